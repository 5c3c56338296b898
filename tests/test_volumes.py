"""Region volumes on a constructed label image with known volumes."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_ccf_align.core.io.atlas import StructureTable
from napari_ccf_align.core.results import volumes
from napari_ccf_align.core.volume import Volume

GRAPH = {"id": 997, "acronym": "root", "name": "root", "children": [
    {"id": 315, "acronym": "Isocortex", "name": "Isocortex", "children": [
        {"id": 500, "acronym": "MO", "name": "Somatomotor areas", "children": []},
        {"id": 453, "acronym": "SS", "name": "Somatosensory areas", "children": []}]},
    {"id": 512, "acronym": "CB", "name": "Cerebellum", "children": []},
]}  # fmt: skip


def test_volumes_count_each_side_in_the_samples_voxels_and_sum_the_parents(tmp_path):
    table = StructureTable.from_graph(GRAPH)
    # a sample grid of 0.05 x 0.1 x 0.2 mm voxels (1e-3 mm³ each), in PIR order
    data = np.zeros((10, 8, 6), np.uint32)
    data[:4, :, :3] = 500  # 4*8*3 = 96 voxels of MO
    data[4:6] = 453  # 2*8*6 = 96 of SS
    data[8:, :2, 3:] = 512  # 2*2*3 = 12 of CB
    labels = Volume.from_array(data, (0.05, 0.1, 0.2), "PIR", name="regions")
    side = labels.with_data(
        np.where(np.arange(6) < 3, 1, 2)[None, None, :].repeat(10, 0).repeat(8, 1).astype(np.uint8)
    )
    rows = {r["acronym"]: r for r in volumes.region_volumes(labels, side, table)}
    assert (rows["MO"]["left_voxels"], rows["MO"]["right_voxels"]) == (96, 0)
    assert (rows["SS"]["left_voxels"], rows["SS"]["right_voxels"]) == (48, 48)
    assert (rows["CB"]["left_voxels"], rows["CB"]["right_voxels"]) == (0, 12)
    assert rows["Isocortex"]["total_voxels"] == 96 + 96  # the parent sums its children
    assert rows["root"]["total_voxels"] == 96 + 96 + 12
    assert rows["MO"]["total_volume_mm3"] == pytest.approx(96 * 1e-3)
    assert rows["SS"]["left_volume_mm3"] == pytest.approx(0.048)
    path = volumes.write_volumes_csv(list(rows.values()), tmp_path / "volumes.csv")
    written = {r["acronym"]: r for r in csv.DictReader(path.open())}
    assert written["Isocortex"]["total_volume_mm3"] == "0.192000"


def test_the_allen_hemisphere_map_splits_at_the_midline():
    atlas = Volume.from_array(np.zeros((8, 6, 10), np.uint8), 0.1, "PIR", name="atlas")
    side = volumes.hemispheres(atlas)
    ras = side.reoriented("RAS")  # R axis first
    assert (np.asarray(ras.data)[:5] == volumes.LEFT).all()
    assert (np.asarray(ras.data)[5:] == volumes.RIGHT).all()
