"""A registration run on disk: its parameters, transforms, images and QC report.

A session folder holds

- ``session.json``: the method, the alignment state, the engine settings, the atlas
  (resolution, source, grid), the inputs (path, sha256, how they were read), the
  package versions, the metric traces, the similarity figures and the timings;
- ``rigid.tfm``: the linear stage (rigid, similarity or affine) as an ITK
  transform file, LPS, fixed (atlas) -> moving (sample);
- for SyN, ``syn_warp.nii.gz`` and ``syn_inverse_warp.nii.gz``: ITK displacement
  fields on the atlas-side working grid (see :mod:`.transform_files` for how they
  compose with ``rigid.tfm``);
- ``warped.nii.gz``: the sample on the atlas grid (the atlas's RAS affine);
- ``annotation_in_sample.nii.gz``: the atlas annotation on the sample's grid
  (Allen structure ids), when the annotation was given;
- ``qc_report.png`` and ``qc_report.html``;
- ``moving.nii.gz`` (and ``fixed.nii.gz``) when an input came from no file (a
  napari layer made in memory), so the session can always be loaded again.

The folder is written whole under a temporary name beside it, then renamed into
place; an earlier session at that place is renamed aside first and removed last.
A process killed at any moment leaves either the old session or the new one
readable (:func:`load` finds the old one if the kill fell between the two renames).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import CcfAlignError, UnreadableFileError, WriteError
from napari_ccf_align.core.io import transforms
from napari_ccf_align.core.progress import TracePoint
from napari_ccf_align.core.register import rigid, syn
from napari_ccf_align.core.volume import Volume

FORMAT = "napari-ccf-align session"
VERSION = 1
SESSION_JSON = "session.json"
LINEAR_TFM = "rigid.tfm"
SYN_WARP = "syn_warp.nii.gz"
SYN_INVERSE_WARP = "syn_inverse_warp.nii.gz"
WARPED = "warped.nii.gz"
ANNOTATION_IN_SAMPLE = "annotation_in_sample.nii.gz"
EMBEDDED_MOVING = "moving.nii.gz"
EMBEDDED_FIXED = "fixed.nii.gz"
_PREVIOUS = ".previous"


def _matrix(value) -> list[list[float]]:
    return np.asarray(value, float).tolist()


@dataclass(frozen=True)
class InputRecord:
    """How one input volume was read, so it can be read the same way again.

    Parameters
    ----------
    name : str
        Layer / volume name.
    path : str or None
        Absolute path of the file read; None for data made in memory (then the
        volume is embedded in the session as ``embedded``).
    sha256 : str or None
        Of the file at ``path`` when it was read.
    voxel_size_um : tuple of float or None
        Voxel size given by the user (µm, array axis order); None = the header's.
    orientation : str or None
        Orientation code given by the user (``style``); None = the header's.
    style : {"nibabel", "brainglobe"}
        How ``orientation`` is written.
    shape : tuple of int
        Array shape.
    affine : tuple of tuple of float
        Index -> world (RAS mm) map of the volume as read.
    embedded : str or None
        File name inside the session folder holding the volume itself.
    """

    name: str
    path: str | None
    sha256: str | None
    voxel_size_um: tuple[float, ...] | None
    orientation: str | None
    style: str
    shape: tuple[int, ...]
    affine: tuple[tuple[float, ...], ...]
    embedded: str | None = None

    def grid(self) -> Volume:
        """The input's grid (geometry only, no data)."""
        return Volume.grid(self.shape, self.affine, self.name)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "voxel_size_um": None if self.voxel_size_um is None else list(self.voxel_size_um),
            "orientation": self.orientation,
            "style": self.style,
            "shape": list(self.shape),
            "affine": _matrix(self.affine),
            "embedded": self.embedded,
        }

    @classmethod
    def from_dict(cls, data: dict) -> InputRecord:
        """Inverse of :meth:`to_dict`."""
        vs = data.get("voxel_size_um")
        return cls(
            str(data["name"]),
            data.get("path"),
            data.get("sha256"),
            None if vs is None else tuple(float(v) for v in vs),
            data.get("orientation"),
            str(data.get("style", "nibabel")),
            tuple(int(v) for v in data["shape"]),
            tuple(tuple(float(v) for v in row) for row in data["affine"]),
            data.get("embedded"),
        )


def record_input(
    volume: Volume,
    path: str | os.PathLike | None = None,
    voxel_size_um=None,
    orientation: str | None = None,
    style: str = "nibabel",
) -> InputRecord:
    """The record of ``volume``, read from ``path`` (default: the volume's ``source``).

    Without a readable file the record says the volume must be embedded.
    """
    source = path if path is not None else volume.metadata.get("source")
    file = Path(source).resolve() if source and Path(source).is_file() else None
    read_as = volume.metadata.get("read_as") or {}
    if path is None and file is not None and voxel_size_um is None and orientation is None:
        voxel_size_um = read_as.get("voxel_size_um")
        orientation = read_as.get("orientation")
        style = read_as.get("style") or style
    vs = voxel_size_um
    if vs is not None:
        vs = tuple(float(v) for v in np.broadcast_to(np.asarray(vs, float), (volume.ndim,)))
    return InputRecord(
        volume.name,
        None if file is None else str(file),
        None if file is None else io.sha256_of(file),
        vs,
        orientation,
        style,
        tuple(int(s) for s in volume.shape),
        tuple(tuple(float(v) for v in row) for row in np.asarray(volume.affine, float)),
    )


def as_in_file(volume: Volume) -> Volume:
    """The volume in its file's array layout, when it was read from a file that still holds it.

    napari layers show volumes with their axes in world order; a session records
    (and puts the annotation on) the grid of the user's file instead. A volume
    made in memory, or whose file changed, is returned as it is.
    """
    source = volume.metadata.get("source")
    if not source or not Path(source).is_file():
        return volume
    flags = volume.metadata.get("read_as") or {}
    try:
        in_file = io.read_volume(
            source,
            voxel_size_um=flags.get("voxel_size_um"),
            orientation=flags.get("orientation"),
            style=flags.get("style") or "nibabel",
            name=volume.name,
        )
    except CcfAlignError:
        return volume
    shown = in_file.reoriented(volume.world_axes)
    same = (
        shown.shape == volume.shape
        and np.allclose(shown.affine, volume.affine, atol=1e-6)
        and np.array_equal(shown.data, volume.data)
    )
    return in_file if same else volume


@dataclass(frozen=True)
class AtlasRecord:
    """The fixed side: the Allen CCF at a resolution (``kind="allen"``) or another volume."""

    kind: str
    resolution_um: float
    name: str
    shape: tuple[int, ...]
    affine: tuple[tuple[float, ...], ...]
    source: str = ""

    def grid(self) -> Volume:
        """The atlas grid (geometry only)."""
        return Volume.grid(self.shape, self.affine, self.name)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "kind": self.kind,
            "resolution_um": self.resolution_um,
            "name": self.name,
            "shape": list(self.shape),
            "affine": _matrix(self.affine),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AtlasRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            str(data["kind"]),
            float(data["resolution_um"]),
            str(data["name"]),
            tuple(int(v) for v in data["shape"]),
            tuple(tuple(float(v) for v in row) for row in data["affine"]),
            str(data.get("source", "")),
        )


def record_atlas(fixed: Volume, source: str = "") -> AtlasRecord:
    """The record of the fixed volume: Allen CCF when its metadata says so."""
    allen = fixed.metadata.get("atlas") == "allen_mouse_ccf_v3"
    res = float(fixed.metadata.get("resolution_um", np.min(fixed.spacing) * 1000.0))
    return AtlasRecord(
        "allen" if allen else "volume",
        res,
        fixed.name,
        tuple(int(s) for s in fixed.shape),
        tuple(tuple(float(v) for v in row) for row in np.asarray(fixed.affine, float)),
        source,
    )


@dataclass(frozen=True)
class Session:
    """One registration: what was asked, on what, and what came out.

    Parameters
    ----------
    method : str
        One of :data:`.pipeline.METHODS`.
    atlas, moving : AtlasRecord, InputRecord
        The inputs.
    state : AlignmentState
        The hand alignment and crop the run started from.
    rigid_settings, syn_settings : RigidSettings, SynSettings or None
        The engine settings used (None for a stage that did not run).
    result : Result
        The result (:mod:`~napari_ccf_align.core.register.result`; a SyN result holds its
        linear stage as ``linear_stage``).
    start : numpy.ndarray or None
        The moving -> atlas map (RAS mm) the run started from, when not the state.
    centred : bool
        The state's shift was computed by centring the sample on the atlas (so a
        replay on another brain centres that brain again).
    figures : dict
        Similarity to the atlas per stage (e.g. NCC, Mattes MI).
    timings : dict
        Seconds per step.
    created : str
        ISO time of the run.
    versions : dict
        Package versions.
    """

    method: str
    atlas: AtlasRecord
    moving: InputRecord
    state: AlignmentState
    rigid_settings: rigid.RigidSettings | None
    syn_settings: syn.SynSettings | None
    result: object = field(repr=False)
    start: np.ndarray | None = field(default=None, repr=False)
    centred: bool = False
    figures: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    created: str = ""
    versions: dict = field(default_factory=dict)

    @property
    def linear_result(self) -> rigid.RigidResult | None:
        """The SimpleITK stage's result, if one ran."""
        return self.result.linear_stage


def of_run(
    result,
    method: str,
    state: AlignmentState,
    fixed: Volume,
    moving: Volume,
    start: np.ndarray | None = None,
    figures: dict | None = None,
    atlas_source: str = "",
) -> Session:
    """The session of a run made elsewhere (the Register widget): records, settings, timings."""
    linear = result.linear_stage
    seconds = float(result.seconds) + (
        float(linear.seconds) if linear is not result and linear else 0.0
    )
    return Session(
        method=method,
        atlas=record_atlas(fixed, atlas_source),
        moving=record_input(moving),
        state=state,
        rigid_settings=None if linear is None else linear.settings,
        syn_settings=result.settings if result.deformable else None,
        result=result,
        start=None if start is None else np.asarray(start, float),
        centred=False,
        figures=figures or {},
        timings={"registration_s": round(seconds, 3)},
        created=now(),
        versions=versions(),
    )


def versions() -> dict[str, str]:
    """Versions of the packages a run depends on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("napari-ccf-align", "SimpleITK", "dipy", "numpy", "scipy", "napari"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def now() -> str:
    """The current local time, ISO 8601 with offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------- to and from JSON


def _trace_list(trace) -> list[list]:
    return [[p.level, p.iteration, float(p.metric), float(p.elapsed_s), p.stage] for p in trace]


def _trace_of(rows) -> tuple[TracePoint, ...]:
    return tuple(TracePoint(int(a), int(b), float(c), float(d), str(e)) for a, b, c, d, e in rows)


def _linear_dict(r: rigid.RigidResult) -> dict:
    return {
        "matrix": _matrix(r.matrix),
        "params": None if r.params is None else r.params.to_dict(),
        "trace": _trace_list(r.trace),
        "stop_reason": r.stop_reason,
        "final_metric": r.final_metric,
        "seconds": r.seconds,
        "settings": r.settings.to_dict(),
    }


def _linear_of(data: dict, transform) -> rigid.RigidResult:
    params = data.get("params")
    return rigid.RigidResult(
        transform,
        np.asarray(data["matrix"], float),
        None if params is None else frames.RigidParams.from_dict(params),
        _trace_of(data["trace"]),
        str(data["stop_reason"]),
        float(data["final_metric"]),
        float(data["seconds"]),
        rigid.RigidSettings.from_dict(data["settings"]),
    )


def to_dict(session: Session) -> dict:
    """``session.json``'s content (the transforms and fields live in their own files)."""
    r = session.result
    result: dict = {"kind": "syn" if r.deformable else "linear"}
    if r.deformable:
        result["syn"] = {
            "matrix": _matrix(r.matrix),
            "trace": _trace_list(r.trace),
            "final_metric": r.final_metric,
            "seconds": r.seconds,
            "stop_reason": r.stop_reason,
            "settings": r.settings.to_dict(),
            "grid": {"shape": list(r.grid.shape), "affine": _matrix(r.grid.affine)},
        }
    linear = session.linear_result
    if linear is not None:
        result["linear"] = _linear_dict(linear)
    files = {"linear_transform": LINEAR_TFM}
    if r.deformable:
        files.update(syn_warp=SYN_WARP, syn_inverse_warp=SYN_INVERSE_WARP)
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": session.created,
        "method": session.method,
        "atlas": session.atlas.to_dict(),
        "moving": session.moving.to_dict(),
        "alignment": session.state.to_dict(),
        "centred": session.centred,
        "start": None if session.start is None else _matrix(session.start),
        "rigid_settings": None
        if session.rigid_settings is None
        else session.rigid_settings.to_dict(),
        "syn_settings": None if session.syn_settings is None else session.syn_settings.to_dict(),
        "result": result,
        "figures": session.figures,
        "timings": session.timings,
        "versions": session.versions,
        "files": files,
        "frames": (
            "Matrices are moving -> atlas maps in RAS mm (4 x 4); rigid.tfm is ITK's fixed -> "
            "moving transform in LPS mm; displacement fields are LPS mm on the atlas side."
        ),
    }


# --------------------------------------------------------------------------- saving


def _check_target(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()) and not (folder / SESSION_JSON).is_file():
        raise WriteError(
            f"{folder} exists and is not a session folder: choose a new or empty folder, so "
            "nothing of yours is overwritten."
        )


def check_session_target(folder: str | os.PathLike) -> Path:
    """Check, before any work, that a session can be written to ``folder``."""
    folder = io.check_output_folder(folder)
    _check_target(folder)
    return folder


def save(
    folder: str | os.PathLike,
    session: Session,
    fixed: Volume,
    moving: Volume,
    annotation: Volume | None = None,
    report: bool = True,
    warped: Volume | None = None,
) -> Path:
    """Write the session folder (see the module docstring) and return its path.

    Parameters
    ----------
    fixed, moving : Volume
        The atlas template and the sample the session registered.
    annotation : Volume, optional
        Atlas labels on the atlas grid (Allen structure ids): written onto the
        sample's grid as ``annotation_in_sample.nii.gz``.
    report : bool
        Also draw the QC report (about a second at 100 µm).
    warped : Volume, optional
        ``session.result.warp(fixed, moving)`` when already computed (saves a warp).

    Raises
    ------
    WriteError
        The folder is a file, holds something else than a session, is not
        writable, or the disk is full; the earlier session there is kept.
    """
    t0 = time.perf_counter()
    folder = check_session_target(folder).absolute()
    parent = folder.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        io.remove_stale_partials(parent)
        _remove_stale_previous(parent, folder.name)
        tmp = Path(
            tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", suffix=".partial", dir=parent)
        )
    except OSError as exc:
        raise io.write_error(parent, exc) from None
    try:
        _write_contents(tmp, session, fixed, moving, annotation, report, warped, t0)
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_contents(tmp, session, fixed, moving, annotation, report, warped, t0) -> None:
    from napari_ccf_align.core.results import report as qc_report

    result = session.result
    linear = session.linear_result
    transform = linear.transform if linear is not None else None
    if transform is None or not np.allclose(
        transforms.moving_to_atlas(transform), result.matrix, atol=1e-9
    ):
        transform = transforms.linear_transform(result.matrix)
    transforms.write_transform(transform, tmp / LINEAR_TFM)
    if result.deformable:
        transforms.write_field(result.forward, result.grid, tmp / SYN_WARP)
        transforms.write_field(result.backward, result.grid, tmp / SYN_INVERSE_WARP)
    warped = warped if warped is not None else result.warp(fixed, moving)
    io.write_volume(
        replace(warped, name=f"{moving.name} (in atlas)"), tmp / WARPED, nibabel_order=True
    )
    if annotation is not None:
        io.write_volume(result.warp_to_sample(annotation, moving), tmp / ANNOTATION_IN_SAMPLE)
    moving_record, atlas_record = session.moving, session.atlas
    if moving_record.path is None:
        io.write_volume(moving, tmp / EMBEDDED_MOVING)
        moving_record = replace(moving_record, embedded=EMBEDDED_MOVING)
    if atlas_record.kind != "allen":
        io.write_volume(fixed, tmp / EMBEDDED_FIXED)
        atlas_record = replace(atlas_record, source=EMBEDDED_FIXED)
    if report:
        qc_report.write(
            tmp, result, fixed, moving, annotation, session.figures or None, warped=warped
        )
    timings = {**session.timings, "save_s": round(time.perf_counter() - t0, 3)}
    data = to_dict(replace(session, moving=moving_record, atlas=atlas_record, timings=timings))
    with io.atomic_path(tmp / SESSION_JSON) as part:
        part.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _swap_in(tmp: Path, folder: Path) -> None:
    """Rename the finished folder into place; an older session is moved aside, then removed."""
    previous = None
    try:
        if folder.exists():
            previous = folder.parent / f".{folder.name}.{os.getpid()}{_PREVIOUS}"
            shutil.rmtree(previous, ignore_errors=True)
            os.rename(folder, previous)
        os.rename(tmp, folder)
        os.chmod(folder, 0o777 & ~io.current_umask())
    except OSError as exc:
        if previous is not None and previous.exists() and not folder.exists():
            os.rename(previous, folder)
        raise io.write_error(folder.parent, exc) from None
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)


def _previous_copies(parent: Path, name: str) -> list[Path]:
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+){re.escape(_PREVIOUS)}$")
    if not parent.is_dir():
        return []
    return [p for p in parent.iterdir() if pattern.match(p.name)]


def _remove_stale_previous(parent: Path, name: str) -> None:
    """Remove earlier sessions set aside by a save that finished (the new one is in place)."""
    if (parent / name / SESSION_JSON).is_file():
        for old in _previous_copies(parent, name):
            shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- loading


def _session_folder(folder: Path) -> Path:
    """The folder to read: ``folder``, or the earlier session a killed save set aside."""
    if (folder / SESSION_JSON).is_file():
        return folder
    for old in sorted(_previous_copies(folder.parent, folder.name), key=os.path.getmtime):
        if (old / SESSION_JSON).is_file():
            return old
    if folder.is_dir():
        raise UnreadableFileError(
            f"{folder} holds no {SESSION_JSON}: it is not a session folder; choose the folder a "
            "session was saved to."
        )
    raise UnreadableFileError(f"No session folder at {folder}: check the path.")


def load(folder: str | os.PathLike) -> tuple[Session, Path]:
    """Read a session folder: ``(session, the folder actually read)``.

    Raises
    ------
    UnreadableFileError
        Not a session folder, a newer format, or a missing or damaged file.
    """
    folder = _session_folder(Path(folder))
    try:
        data = json.loads((folder / SESSION_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} is not readable JSON ({io.first_line(exc)}): the session "
            "is damaged; save it again."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} is not a napari-ccf-align session: choose a session folder."
        )
    if int(data.get("version", 0)) > VERSION:
        raise UnreadableFileError(
            f"The session at {folder} was written by a newer napari-ccf-align (format "
            f"{data.get('version')}): update the plugin to read it."
        )
    try:
        return _session_of(data, folder), folder
    except CcfAlignError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} lacks or garbles an entry ({exc}): the session is "
            "damaged; save it again."
        ) from None


def _session_of(data: dict, folder: Path) -> Session:
    r = data["result"]
    transform = transforms.read_transform(folder / LINEAR_TFM)
    linear = _linear_of(r["linear"], transform) if "linear" in r else None
    if r["kind"] == "syn":
        s = r["syn"]
        forward, grid = transforms.read_field(folder / SYN_WARP)
        backward, _ = transforms.read_field(folder / SYN_INVERSE_WARP)
        result = syn.SynResult(
            grid,
            forward,
            backward,
            transforms.moving_to_atlas(transform),
            _trace_of(s["trace"]),
            float(s["final_metric"]),
            float(s["seconds"]),
            str(s["stop_reason"]),
            syn.SynSettings.from_dict(s["settings"]),
            linear,
        )
    else:
        result = linear
    start = data.get("start")
    return Session(
        method=str(data["method"]),
        atlas=AtlasRecord.from_dict(data["atlas"]),
        moving=InputRecord.from_dict(data["moving"]),
        state=AlignmentState.from_dict(data["alignment"]),
        rigid_settings=None
        if data.get("rigid_settings") is None
        else rigid.RigidSettings.from_dict(data["rigid_settings"]),
        syn_settings=None
        if data.get("syn_settings") is None
        else syn.SynSettings.from_dict(data["syn_settings"]),
        result=result,
        start=None if start is None else np.asarray(start, float),
        centred=bool(data.get("centred", False)),
        figures=dict(data.get("figures", {})),
        timings=dict(data.get("timings", {})),
        created=str(data.get("created", "")),
        versions=dict(data.get("versions", {})),
    )


def read_moving(session: Session, folder: str | os.PathLike) -> Volume:
    """The sample the session registered, read as it was (embedded copy, or its file).

    Raises
    ------
    MissingFileError, UnreadableFileError
        The file is gone or was changed since the session was saved.
    """
    rec = session.moving
    if rec.embedded:
        volume = io.read_volume(Path(folder) / rec.embedded, name=rec.name)
    else:
        path = Path(rec.path or "")
        if not path.is_file():
            raise UnreadableFileError(
                f"The sample file {path} this session registered is gone: put it back, or apply "
                "the session to the file where it is now."
            )
        if rec.sha256 and io.sha256_of(path) != rec.sha256:
            raise UnreadableFileError(
                f"{path} changed since the session was saved (its sha256 differs): register it "
                "again, or restore the original file."
            )
        volume = read_input(path, rec.voxel_size_um, rec.orientation, rec.style, rec.name)
    if volume.shape == rec.shape:  # where it was when registered (e.g. placed by hand in napari)
        volume = replace(volume, affine=np.asarray(rec.affine, float), name=rec.name)
    return volume


def read_input(path, voxel_size_um, orientation, style, name=None) -> Volume:
    """Read a sample file with the given geometry flags (None: the header's)."""
    return io.read_volume(
        path, voxel_size_um=voxel_size_um, orientation=orientation, style=style, name=name
    )


def read_fixed(session: Session, folder: str | os.PathLike, cache=None, base_url=None):
    """``(template, annotation or None, structures or None)`` of the session's atlas."""
    rec = session.atlas
    if rec.kind != "allen":
        return io.read_volume(Path(folder) / rec.source, name=rec.name), None, None
    from napari_ccf_align.core.io import atlas

    a = atlas.load_atlas(int(rec.resolution_um), annotation=True, cache=cache, base_url=base_url)
    return a.template, a.annotation, a.structures
