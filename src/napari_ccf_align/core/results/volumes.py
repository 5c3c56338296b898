"""Region volumes: how much of each atlas region, left and right, a sample holds.

The atlas annotation on the sample's own grid (``Result.warp_to_sample``) is counted voxel by
voxel in the sample's space, so volumes are the sample's tissue, not the atlas's. Each region's
count includes every region below it (a parent is the sum of its children and itself), as
BrainGlobe's ``volumes.csv`` does. Left and right come from the atlas's hemisphere map put on
the same grid.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from napari_ccf_align.core import io, label_values
from napari_ccf_align.core.volume import Volume

#: Hemisphere labels of :func:`hemispheres`.
LEFT, RIGHT = 1, 2

COLUMNS = (
    "structure_id",
    "acronym",
    "name",
    "left_voxels",
    "right_voxels",
    "total_voxels",
    "left_volume_mm3",
    "right_volume_mm3",
    "total_volume_mm3",
)


def hemispheres(atlas: Volume) -> Volume:
    """The atlas's hemisphere map (uint8: 1 left, 2 right) split at the mid-sagittal plane.

    The atlas is in the RAS world with its left-right axis symmetric about its centre (the
    Allen CCF is): a voxel whose centre lies left (x below the grid's centre) is left.
    """
    centre = atlas.centre_mm[0]
    axis = int(np.argmax(np.abs(atlas.affine[0, : atlas.ndim])))  # the array axis along R
    n = atlas.shape[axis]
    idx = np.zeros((n, atlas.ndim))
    idx[:, axis] = np.arange(n)
    side = np.where(atlas.index_to_world(idx)[:, 0] < centre, LEFT, RIGHT).astype(np.uint8)
    shape = [1] * atlas.ndim
    shape[axis] = n
    data = np.broadcast_to(side.reshape(shape), atlas.shape).copy()
    return atlas.with_data(data, name=f"{atlas.name} hemispheres")


def region_volumes(labels: Volume, side: Volume, structures) -> list[dict]:
    """One row per region holding any voxel (itself or below it), parents summed.

    Parameters
    ----------
    labels : Volume
        Allen structure ids on the sample's grid.
    side : Volume
        Hemispheres (1 left, 2 right) on the same grid.
    structures : StructureTable
        The ontology (names, parents).

    Returns
    -------
    list of dict
        Keyed by :data:`COLUMNS`; volumes in mm³ of the sample's voxels.
    """
    ids = np.asarray(labels.data).ravel()
    sides = np.asarray(side.data).ravel()
    voxel_mm3 = float(np.prod(labels.spacing))
    counts: dict[int, list[int]] = {}
    for s, column in ((LEFT, 0), (RIGHT, 1)):
        present, n = label_values.value_counts(ids[(sides == s) & (ids > 0)])
        for sid, count in zip(present.tolist(), n.tolist(), strict=True):
            if sid not in structures:
                continue
            for region in (sid, *structures.ancestors(sid)):
                counts.setdefault(region, [0, 0])[column] += count
    rows = []
    for region in sorted(counts, key=lambda r: (structures[r].depth, r)):
        left, right = counts[region]
        s = structures[region]
        rows.append(
            {
                "structure_id": region,
                "acronym": s.acronym,
                "name": s.name,
                "left_voxels": left,
                "right_voxels": right,
                "total_voxels": left + right,
                "left_volume_mm3": left * voxel_mm3,
                "right_volume_mm3": right * voxel_mm3,
                "total_volume_mm3": (left + right) * voxel_mm3,
            }
        )
    return rows


def write_volumes_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write :func:`region_volumes` rows as CSV (volumes to 6 decimals, mm³), atomically."""
    path = Path(path)
    with io.atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([f"{row[c]:.6f}" if c.endswith("mm3") else row[c] for c in COLUMNS])
    return path
