"""A session folder checked as a whole before it is used: it may come from anyone.

:func:`file_hashes` records the SHA-256 of every file a session holds when it is saved;
:func:`check_loaded` checks, on load, what ``session.json`` says against the files beside it:
the kind of result, the linear transform (3D, finite, invertible, equal to the matrix the
JSON records), the displacement fields (finite, of a plausible size, on the grid the JSON
records) and each file's recorded hash. Every mismatch names the file and what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.errors import UnreadableFileError
from napari_ccf_align.core.io import transforms

#: Kinds of result a session may hold.
RESULT_KINDS = ("linear", "syn")
#: How far a recorded matrix and rigid.tfm may disagree (mm, at points 100 mm out).
MATRIX_TOLERANCE_MM = 1e-6
#: The largest displacement a field may hold, as a multiple of its grid's extent.
LARGEST_DISPLACEMENT = 1.0


def file_hashes(folder: Path, names: list[str]) -> dict[str, str]:
    """``{name: sha256}`` of the files ``names`` that exist in ``folder``."""
    return {n: io.sha256_of(folder / n) for n in names if (folder / n).is_file()}


def check_hash(folder: Path, name: str, recorded: dict) -> None:
    """Refuse a file of the session whose bytes differ from the hash recorded at save time."""
    want = recorded.get(name)
    if want is None:
        return  # sessions from before hashes were recorded
    path = folder / name
    if not path.is_file():
        raise UnreadableFileError(
            f"The session's {name} is missing from {folder}: copy the whole session folder."
        )
    if io.sha256_of(path) != want:
        raise UnreadableFileError(
            f"The session's {name} was changed since it was saved (its sha256 differs from the "
            "one session.json records): use the session as it was saved, or save it again."
        )


def check_inside(folder: Path, name: str, what: str) -> Path:
    """``folder / name``, refused unless ``name`` is a plain file name inside the folder
    (a session's embedded files never lead out of it)."""
    if not name or Path(name).name != name or name in (".", ".."):
        raise UnreadableFileError(
            f"session.json names its {what} {name!r}, which is not a file inside the session "
            "folder: the session is damaged or was edited; save it again."
        )
    return folder / name


def check_kind(data: dict, folder: Path) -> str:
    """The result's kind, refused unless it is one this plugin writes."""
    kind = data["result"]["kind"]
    if kind not in RESULT_KINDS:
        raise UnreadableFileError(
            f"{folder / 'session.json'} holds a result of unknown kind {kind!r} (not "
            f"{' or '.join(RESULT_KINDS)}): the session is damaged; save it again."
        )
    return kind


def check_transform(transform, recorded_matrix, path: Path) -> np.ndarray:
    """The transform's moving -> atlas matrix, refused unless it is a sound 3D linear map
    equal to the matrix ``session.json`` records (both RAS mm)."""
    name = path.name
    if transform.GetDimension() != 3:
        raise UnreadableFileError(
            f"{name} is a {transform.GetDimension()}D transform, not 3D: the session is "
            "damaged; save it again."
        )
    itk = frames.sitk_transform_matrix(transform)  # fixed -> moving, LPS, as the file says
    if (
        not np.all(np.isfinite(itk))
        or abs(np.linalg.det(itk[:3, :3])) < 1e-6
        or np.abs(itk[:3, 3]).max() > 1e4
    ):
        raise UnreadableFileError(
            f"{name} is not a usable transform (singular, not finite, or shifting by more "
            "than 10 m): the session is damaged; save it again."
        )
    matrix = transforms.moving_to_atlas(transform)
    if recorded_matrix is not None:
        recorded = np.asarray(recorded_matrix, float)
        if recorded.shape != (4, 4) or not np.all(np.isfinite(recorded)):
            raise UnreadableFileError(
                "session.json records a matrix that is not 4 x 4 and finite: the session is "
                "damaged; save it again."
            )
        probe = np.array([[0, 0, 0, 1], [100, 0, 0, 1], [0, 100, 0, 1], [0, 0, 100, 1]], float)
        gap = np.abs(probe @ (matrix - recorded).T).max()
        if gap > MATRIX_TOLERANCE_MM:
            raise UnreadableFileError(
                f"{name} and the matrix in session.json disagree (by {gap:.3g} mm 100 mm from "
                "the origin): one of them was edited; save the session again."
            )
    return matrix


def check_field(field: np.ndarray, grid, recorded_grid: dict | None, path: Path) -> None:
    """Refuse a displacement field that is not finite, implausibly large, or not on the
    grid ``session.json`` records."""
    name = path.name
    if not np.all(np.isfinite(field)):
        raise UnreadableFileError(
            f"{name} holds NaN or infinite displacements: the session is damaged; save it again."
        )
    extent = float(np.max(np.asarray(grid.shape) * grid.spacing))
    if field.size and float(np.abs(field).max()) > LARGEST_DISPLACEMENT * extent:
        raise UnreadableFileError(
            f"{name} moves points by {float(np.abs(field).max()):.3g} mm, more than the "
            f"{extent:.3g} mm its grid spans: the session is damaged; save it again."
        )
    if recorded_grid is not None:
        shape = tuple(int(n) for n in recorded_grid.get("shape", ()))
        affine = np.asarray(recorded_grid.get("affine", np.eye(4)), float)
        if shape != tuple(grid.shape) or not np.allclose(affine, grid.affine, atol=1e-6):
            raise UnreadableFileError(
                f"{name} is on a {'×'.join(map(str, grid.shape))} grid, not the "
                f"{'×'.join(map(str, shape))} grid session.json records: the session is "
                "damaged; save it again."
            )
