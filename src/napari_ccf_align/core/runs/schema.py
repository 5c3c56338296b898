"""A session's schema: what ``session.json`` records, and the objects it is read into.

:class:`Session` is one run (what was asked, on what, and what came out); the records
say where the atlas and the sample came from and how they were read. :func:`to_dict`
and :func:`from_dict` convert to and from ``session.json``'s content; the folder
itself (atomic writing, loading, the files beside the JSON) is :mod:`.session`.
"""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import CcfAlignError
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
#: The labels of an embedded template, when the run had them (its own annotation).
EMBEDDED_FIXED_LABELS = "fixed_labels.nii.gz"


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
    level : int
        The OME-Zarr pyramid level read (0: full resolution; other formats: 0).
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
    level: int = 0

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
            "level": self.level,
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
            int(data.get("level") or 0),
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
    file = Path(source).resolve() if source and io.exists(source) else None
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
        level=int(read_as.get("level") or 0) if file is not None else 0,
    )


def as_in_file(volume: Volume) -> Volume:
    """The volume in its file's array layout, when it was read from a file that still holds it.

    napari layers show volumes with their axes in world order; a session records
    (and puts the annotation on) the grid of the user's file instead. A volume
    made in memory, or whose file changed, is returned as it is.
    """
    source = volume.metadata.get("source")
    if not source or not io.exists(source):
        return volume
    flags = volume.metadata.get("read_as") or {}
    try:
        in_file = io.read_volume(
            source,
            voxel_size_um=flags.get("voxel_size_um"),
            orientation=flags.get("orientation"),
            style=flags.get("style") or "nibabel",
            name=volume.name,
            level=int(flags.get("level") or 0),
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
    version: str = ""  # a BrainGlobe atlas's version

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
            "version": self.version,
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
            str(data.get("version", "")),
        )


def record_atlas(fixed: Volume, source: str = "") -> AtlasRecord:
    """The record of the fixed volume: Allen CCF when its metadata says so."""
    allen = fixed.metadata.get("atlas") == "allen_mouse_ccf_v3"
    brainglobe = fixed.metadata.get("brainglobe_name")
    res = float(fixed.metadata.get("resolution_um", np.min(fixed.spacing) * 1000.0))
    return AtlasRecord(
        "allen" if allen else "brainglobe" if brainglobe else "volume",
        res,
        str(brainglobe) if brainglobe else fixed.name,
        tuple(int(s) for s in fixed.shape),
        tuple(tuple(float(v) for v in row) for row in np.asarray(fixed.affine, float)),
        source,
        str(fixed.metadata.get("brainglobe_version", "")),
    )


@dataclass(frozen=True)
class Session:
    """One registration: what was asked, on what, and what came out.

    Parameters
    ----------
    method : str
        One of :data:`.methods.METHODS`.
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


def from_dict(data: dict, transform, fields=None) -> Session:
    """The inverse of :func:`to_dict`, given the files it names: the linear ``transform``
    (SimpleITK, from ``rigid.tfm``) and, for SyN, ``fields = (forward, backward, grid)``
    (RAS mm, read from the two displacement-field files)."""
    r = data["result"]
    linear = _linear_of(r["linear"], transform) if "linear" in r else None
    if r["kind"] == "syn":
        s = r["syn"]
        forward, backward, grid = fields
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
            recipe=str(data["method"]) if str(data["method"]).count("+") > 1 else None,
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
