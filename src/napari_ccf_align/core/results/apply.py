"""Apply a registration to other data: images, label images and points.

A result (any :class:`~napari_ccf_align.core.register.result.Result`, fresh or loaded
from a session) maps the sample's world to the atlas's world (both RAS mm).

- another channel of the sample -> the atlas grid (``result.warp``, linear);
- an atlas-space label image (the annotation) -> the sample's grid
  (``result.warp_to_sample``, nearest neighbour: only existing label values);
- points in the sample (detected cells) -> atlas coordinates (:func:`points_to_atlas`),
  and back (:func:`points_to_sample`);
- CSV files of points (:func:`read_points_csv`, :func:`write_points_csv`).

Allen CCF coordinates: besides RAS mm, points are given in the Allen Institute's
own convention, micrometres along (AP, DV, ML) from the raw volume's corner, with
+AP posterior, +DV inferior and +ML right (:func:`ccf_um`); that is what
brainrender and the Allen SDK expect.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.errors import InputError, UnreadableFileError
from napari_ccf_align.core.io.atlas import RAW_SHAPES
from napari_ccf_align.core.volume import Volume

PointsFrame = str  # "index" (the sample file's voxel indices) or "world" (RAS mm)
_FRAMES = ("index", "world")


#: Where a result maps data: into the atlas (from the sample) or into the sample.
DIRECTIONS = ("atlas", "sample")


def map_volume(
    result, image: Volume, to: str, atlas_grid: Volume, sample_grid: Volume, labels: bool
) -> Volume:
    """``image`` mapped through ``result`` into the space ``to`` names.

    ``"atlas"``: an image on the sample's world (another channel) sampled on
    ``atlas_grid``; ``"sample"``: an atlas-space image (the annotation) on
    ``sample_grid``. Linear, or nearest neighbour (label values kept) for ``labels``.
    """
    if to not in DIRECTIONS:
        raise InputError(f"Unknown direction {to!r}: map into 'atlas' or 'sample'.")
    if to == "atlas":
        return result.warp(atlas_grid, image, labels)
    return result.warp_to_sample(image, sample_grid, labels)


def map_volume_slabs(
    result, image: Volume, to: str, grid: Volume, labels: bool, planes: int = 32
) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`map_volume` onto ``grid`` (the atlas's or the sample's, as ``to`` says), as
    ``(first plane, slab)`` pairs of ``planes`` planes along array axis 0: an output that
    never needs to be whole in memory, voxel for voxel the same as the whole."""
    n = grid.shape
    for start in range(0, n[0], planes):
        part = grid.cropped([(start, min(start + planes, n[0])), (0, n[1]), (0, n[2])])
        yield start, np.asarray(map_volume(result, image, to, part, part, labels).data)


def at_resolution(grid: Volume, resolution_um: float) -> Volume:
    """``grid`` at another voxel size (µm): the same voxel 0, directions and extent (the
    Allen CCF's grids at 10, 25, 50 and 100 µm relate so)."""
    spacing = frames.spacing_of(grid.affine)
    factor = spacing / (float(resolution_um) / 1000.0)
    shape = tuple(max(1, int(np.rint(n * f))) for n, f in zip(grid.shape, factor, strict=True))
    affine = np.asarray(grid.affine, float).copy()
    affine[:3, :3] = affine[:3, :3] / factor
    return Volume.grid(shape, affine, grid.name, grid.world_axes)


def points_to_atlas(result, sample_points_ras: np.ndarray) -> np.ndarray:
    """Atlas points (RAS mm) where sample points (RAS mm, ``(n, 3)``) land."""
    return np.asarray(result.to_atlas(np.asarray(sample_points_ras, float)), float)


def points_to_sample(result, atlas_points_ras: np.ndarray) -> np.ndarray:
    """Sample points (RAS mm) shown at atlas points (RAS mm, ``(n, 3)``)."""
    return np.asarray(result.to_moving(np.asarray(atlas_points_ras, float)), float)


def ccf_um(points_ras: np.ndarray, resolution_um: int) -> np.ndarray:
    """Allen CCF coordinates (µm along AP, DV, ML) of atlas points in RAS mm.

    The RAS atlas at ``resolution_um`` puts raw voxel ``(ap, dv, ml)`` at
    ``(ml, n_ap - 1 - ap, n_dv - 1 - dv) * resolution / 1000`` mm (see
    :func:`.atlas.ras_volume`); Allen coordinates are ``index * resolution`` µm.
    """
    n_ap, n_dv, _ = RAW_SHAPES[int(resolution_um)]
    p = np.asarray(points_ras, float) * 1000.0
    r = float(resolution_um)
    return np.stack([(n_ap - 1) * r - p[:, 1], (n_dv - 1) * r - p[:, 2], p[:, 0]], axis=1)


def regions_at(annotation: Volume, points_ras: np.ndarray) -> np.ndarray:
    """Annotation label at each atlas point (RAS mm), nearest voxel; 0 outside the grid."""
    idx = np.rint(annotation.world_to_index(np.asarray(points_ras, float))).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < np.asarray(annotation.shape)), axis=1)
    out = np.zeros(len(idx), np.int64)
    out[inside] = np.asarray(annotation.data)[tuple(idx[inside].T)]
    return out


@dataclass(frozen=True)
class PointsTable:
    """Points read from a CSV file: the original columns and the coordinates (RAS mm)."""

    header: list[str]
    rows: list[list[str]]
    world_ras: np.ndarray


def read_points_csv(path: str | os.PathLike, sample: Volume, frame: PointsFrame) -> PointsTable:
    """Read points from a CSV file with a header row.

    The coordinate columns are found by their names (:func:`_coordinate_columns`):
    ``axis-0, axis-1, axis-2`` (napari's points CSV) or ``x, y, z``. ``frame`` says what
    they are: ``"index"``, voxel indices of the sample file in its array axis order
    (placed through ``sample``'s affine); ``"world"``, world coordinates (RAS mm). A file
    that names no such columns, or a row that is not numbers, is refused.
    """
    if frame not in _FRAMES:
        raise InputError(f"Points frame {frame!r} is unknown: use 'index' or 'world'.")
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"No points file at {path}: check the path.")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            table = [row for row in csv.reader(f) if row and any(c.strip() for c in row)]
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"{path.name} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at position "
            f"{exc.start}): save it as UTF-8 CSV (in Excel: Save As, 'CSV UTF-8') and try again."
        ) from None
    except csv.Error as exc:
        raise UnreadableFileError(
            f"{path.name} is not a CSV file this plugin can read ({exc}): save it as plain "
            "comma-separated text."
        ) from None
    if len(table) < 2:
        raise UnreadableFileError(
            f"{path.name} holds no points: give a CSV file with a header row and one point per row."
        )
    header, rows = [h.strip() for h in table[0]], table[1:]
    columns = _coordinate_columns(header, frame, path.name)
    try:
        coords = np.array([[float(row[c]) for c in columns] for row in rows], float)
    except (ValueError, IndexError):
        raise UnreadableFileError(
            f"{path.name} has a row whose coordinates ({', '.join(header[c] for c in columns)}) "
            "are not numbers: fix or remove that row."
        ) from None
    bad = np.flatnonzero(~np.all(np.isfinite(coords), axis=1))
    if bad.size:
        raise UnreadableFileError(
            f"{path.name} row {int(bad[0]) + 2} has a coordinate that is not a finite number: "
            "fix or remove that row (nothing was written)."
        )
    world = sample.index_to_world(coords) if frame == "index" else coords
    return PointsTable(header, rows, np.asarray(world, float))


#: Header names of coordinate columns, in array-axis order for the "index" frame.
_INDEX_NAMES = (("axis-0", "axis-1", "axis-2"), ("z", "y", "x"))
#: ... and in world (R, A, S) order for the "world" frame (napari's world axes here are RAS).
_WORLD_NAMES = (
    ("axis-0", "axis-1", "axis-2"),
    ("x", "y", "z"),
    ("r", "a", "s"),
    ("r_mm", "a_mm", "s_mm"),
    ("atlas_r_mm", "atlas_a_mm", "atlas_s_mm"),  # what --to atlas writes
    ("sample_r_mm", "sample_a_mm", "sample_s_mm"),  # what --to sample writes
)


def _coordinate_columns(header: list[str], frame: str, name: str) -> list[int]:
    """Indices of the coordinate columns, found by the header's names, never guessed.

    ``axis-0, axis-1, axis-2`` (napari's points CSV) are voxel indices in the file's array
    order in the ``"index"`` frame and R, A, S mm in ``"world"`` (napari's world axes are
    RAS here); ``x, y, z`` are voxel indices ``z`` = axis 0, ``y`` = axis 1, ``x`` = axis 2
    in the ``"index"`` frame (numpy's and BrainGlobe's order), and R, A, S mm in ``"world"``.
    """
    lower = [h.strip().lower() for h in header]
    names = _WORLD_NAMES if frame == "world" else _INDEX_NAMES
    for wanted in names:
        if all(n in lower for n in wanted):
            return [lower.index(n) for n in wanted]
    kind = (
        "'axis-0, axis-1, axis-2' or 'x, y, z' (voxel indices; z is axis 0)"
        if frame == "index"
        else "'axis-0, axis-1, axis-2', 'x, y, z' or 'r_mm, a_mm, s_mm' (RAS mm)"
    )
    raise UnreadableFileError(
        f"{name} names no coordinate columns for {frame} coordinates (its header is "
        f"{', '.join(header[:6])}): name them {kind}."
    )


def atlas_columns(
    atlas_ras: np.ndarray,
    resolution_um: float | None = None,
    annotation: Volume | None = None,
    structures=None,
) -> dict[str, list[str]]:
    """Columns for points in the atlas: RAS mm, Allen CCF µm and the region there.

    ``atlas_r_mm, atlas_a_mm, atlas_s_mm``; with an Allen ``resolution_um``,
    ``ccf_ap_um, ccf_dv_um, ccf_ml_um`` (:func:`ccf_um`); with ``annotation``
    (Allen structure ids on the atlas grid), ``region_id`` and, with
    ``structures``, ``region_acronym`` and ``region_name``.
    """
    p = np.asarray(atlas_ras, float)
    cols = {f"atlas_{a}_mm": [f"{v:.4f}" for v in p[:, k]] for k, a in enumerate("ras")}
    if resolution_um is not None and int(resolution_um) in RAW_SHAPES:
        ccf = ccf_um(p, int(resolution_um))
        cols.update(
            {
                f"ccf_{a}_um": [f"{v:.1f}" for v in ccf[:, k]]
                for k, a in enumerate(("ap", "dv", "ml"))
            }
        )
    if annotation is not None:
        ids = regions_at(annotation, p)
        cols["region_id"] = [str(int(i)) for i in ids]
        if structures is not None:
            known = [structures.by_id.get(int(i)) for i in ids]
            cols["region_acronym"] = [k.acronym if k else "" for k in known]
            cols["region_name"] = [k.name if k else "outside the brain" for k in known]
    return cols


def sample_columns(sample_ras: np.ndarray, sample_grid: Volume) -> dict[str, list[str]]:
    """Columns for points in the sample: RAS mm and voxel indices of the sample file."""
    p = np.asarray(sample_ras, float)
    idx = sample_grid.world_to_index(p)
    cols = {f"sample_{a}_mm": [f"{v:.4f}" for v in p[:, k]] for k, a in enumerate("ras")}
    cols.update({f"sample_axis-{k}": [f"{v:.3f}" for v in idx[:, k]] for k in range(idx.shape[1])})
    return cols


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a ``'``.

    Numbers (``-1.5``, ``+2``) are left as they are.

    Examples
    --------
    >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("-1.5"), spreadsheet_safe("CA1")
    ("'=HYPERLINK(1)", '-1.5', 'CA1')
    """
    text = str(cell)
    if not text.startswith(_FORMULA_STARTS):
        return text
    try:
        float(text)
    except ValueError:
        return "'" + text
    return text


def write_points_csv(
    path: str | os.PathLike, table: PointsTable, columns: dict[str, list[str]]
) -> Path:
    """Write the input columns followed by ``columns`` (name -> one value per row), atomically.

    Cells that a spreadsheet would run as a formula are written as text
    (:func:`spreadsheet_safe`).
    """
    path = Path(path)
    names = list(columns)
    with io.atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([spreadsheet_safe(c) for c in (*table.header, *names)])
        for k, row in enumerate(table.rows):
            cells = (*row, *(columns[n][k] for n in names))
            writer.writerow([spreadsheet_safe(c) for c in cells])
    return path
