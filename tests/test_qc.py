"""QC figures: Jacobians of analytic fields, the warped grid, Dice, NCC, MI, boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import CcfAlignError
from napari_ccf_align.core.results import qc
from napari_ccf_align.core.volume import Volume

TOL = 1e-3


def _points(shape, spacing):
    """World coordinates (mm) of every grid point, components last."""
    idx = np.indices(shape, dtype=float)
    return np.moveaxis(idx, 0, -1) * np.asarray(spacing)


def _field_of_linear_map(a: np.ndarray, shape, spacing, centre=None):
    """The displacement u(x) = A x - x (about a centre) of a linear map A."""
    x = _points(shape, spacing)
    c = np.zeros(len(shape)) if centre is None else np.asarray(centre)
    return (x - c) @ a.T + c - x


@pytest.mark.parametrize("spacing", [(0.1, 0.1, 0.1), (0.05, 0.2, 0.1)])  # anisotropic too
def test_jacobian_of_analytic_fields(spacing):
    shape = (12, 10, 14)
    scale = _field_of_linear_map(np.eye(3) * 1.1, shape, spacing)
    np.testing.assert_allclose(qc.jacobian_determinant(scale, spacing), 1.331, atol=TOL)
    shear = np.eye(3)
    shear[0, 1] = 0.4
    np.testing.assert_allclose(
        qc.jacobian_determinant(_field_of_linear_map(shear, shape, spacing), spacing), 1, atol=TOL
    )
    rot = frames.rotation_matrix((20, -35, 50))
    centre = np.asarray(shape) * np.asarray(spacing) / 2
    u = _field_of_linear_map(rot, shape, spacing, centre)
    np.testing.assert_allclose(qc.jacobian_determinant(u, spacing), 1, atol=TOL)


def test_a_constructed_fold_is_negative_where_it_folds():
    # along axis 0 the map x -> x + u(x) runs backwards (slope -1) inside [4, 8) mm
    shape, spacing = (16, 4, 4), (1.0, 1.0, 1.0)
    x = np.arange(shape[0], dtype=float)
    mapped = np.where(x < 4, x, np.where(x < 8, 8 - x, x - 4))
    u = np.zeros((*shape, 3))
    u[..., 0] = (mapped - x)[:, None, None]
    jac = qc.jacobian_determinant(u, spacing)
    assert np.all(jac[5:7] < 0) and np.all(jac[:3] > 0) and np.all(jac[10:] > 0)
    np.testing.assert_array_equal(qc.folding_mask(jac)[:, 0, 0], (jac[:, 0, 0] <= 0))


def test_the_warped_grid_moves_by_the_displacement():
    shape, spacing = (40, 40), (0.1, 0.1)
    straight = qc.deformation_grid(np.zeros((*shape, 2)), spacing, 1.0)
    assert straight[:, 5].nonzero()[0].tolist() == [0, 10, 20, 30]  # every 1 mm along axis 0
    shift = np.zeros((*shape, 2))
    shift[..., 0] = 0.3  # x + u on a plane  =>  x = k mm - 0.3 mm: lines move 3 voxels back
    moved = qc.deformation_grid(shift, spacing, 1.0)
    assert moved[:, 5].nonzero()[0].tolist() == [7, 17, 27, 37]
    # a smooth field: at sampled grid-line voxels, x + u(x) sits on a plane (to half a voxel)
    rng = np.random.default_rng(0)
    u = np.zeros((*shape, 2))
    u[..., 0] = 0.25 * np.sin(_points(shape, spacing)[..., 1])
    grid = qc.deformation_grid(u, spacing, 1.0)
    rows, cols = np.nonzero(grid)
    pick = rng.choice(len(rows), 50, replace=False)
    p = _points(shape, spacing)[rows[pick], cols[pick]] + u[rows[pick], cols[pick]]
    off = np.abs(p - np.round(p))
    assert np.all(off.min(axis=1) <= 0.05 + 1e-9)


def test_dice_ncc_mi_checkerboard_difference_and_boundaries():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (10, 12, 8))
    assert set(qc.dice_per_region(labels, labels).values()) == {1.0}
    assert qc.dice_per_region(np.where(labels > 0, 1, 0), np.where(labels > 0, 0, 2)) == {
        1: 0.0,
        2: 0.0,
    }
    a = rng.random((10, 12, 8)).astype(np.float32)
    assert qc.ncc(a, a) == pytest.approx(1.0)
    assert qc.ncc(a, -a) == pytest.approx(-1.0)
    va = Volume.from_array(a, 0.1, "RAS")
    mi_self = qc.mattes_mi(va, va)
    mi_noise = qc.mattes_mi(va, va.with_data(rng.random(a.shape).astype(np.float32)))
    assert mi_self > 5 * mi_noise > 0
    x, y = rng.random((8, 8)), rng.random((8, 8))
    board = qc.checkerboard(x, y, tiles=2)  # 2 x 2 tiles of 4 x 4 voxels
    ux, uy = qc.unit_range(x).astype(np.float32), qc.unit_range(y).astype(np.float32)
    assert board[0, 0] == ux[0, 0] and board[0, 7] == uy[0, 7] and board[7, 7] == ux[7, 7]
    assert board[3, 4] == uy[3, 4] and board[4, 3] == uy[4, 3]
    diff = qc.normalised_difference(a, a)
    assert np.all(diff == 0)
    edges = qc.region_boundaries(np.pad(np.ones((4, 4), int), 2))
    assert edges.sum() == 4 * 4 - 2 * 2  # the outer ring of the square, inside it


def test_bad_fields_are_sentences():
    with pytest.raises(CcfAlignError, match="not a 2D or 3D vector field"):
        qc.jacobian_determinant(np.zeros((4, 4, 4)), (1, 1, 1))
    with pytest.raises(CcfAlignError, match="shapes"):
        qc.checkerboard(np.zeros((3, 3)), np.zeros((4, 4)))


def test_boundaries_between_regions_are_one_voxel_thick():
    labels = np.zeros((1, 12), int)
    labels[0, 2:6], labels[0, 6:10] = 1, 2
    # region 1: its edge on 0 (voxel 2); between 1 and 2: one voxel (6); region 2 on 0: 9
    assert qc.region_boundaries(labels)[0].tolist() == [0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0]


def test_the_brain_mask_fills_dark_white_matter_and_prefers_the_annotation():
    idx = np.indices((40, 40, 40)) - 19.5
    r = np.sqrt((idx**2).sum(0))
    data = np.where(r < 15, 100.0, 0.0)
    data[r < 6] = 2.0  # a dark core (ventricle, white matter) inside the brain
    atlas = Volume.from_array(data.astype(np.float32), 0.1, "RAS", name="atlas")
    brain = qc.brain_mask(atlas)
    assert brain[r < 6].all() and brain[r < 14].all() and not brain[r > 17].any()
    labels = atlas.with_data((r < 10).astype(np.uint32) * 315)
    np.testing.assert_array_equal(qc.brain_mask(atlas, labels), r < 10)


def test_major_region_dice_on_constructed_labels():
    from napari_ccf_align.core.io.atlas import StructureTable

    graph = {"id": 997, "acronym": "root", "name": "root", "children": [
        {"id": 315, "acronym": "Isocortex", "name": "Isocortex", "children": [
            {"id": 500, "acronym": "MO", "name": "Motor", "children": []}]},
        {"id": 512, "acronym": "CB", "name": "Cerebellum", "children": []},
    ]}  # fmt: skip
    table = StructureTable.from_graph(graph)
    a = np.zeros((10, 10), np.uint32)
    a[:5] = 500  # a child of Isocortex counts as Isocortex
    a[5:] = 512
    assert qc.major_region_dice(a, a, table) == {"Isocortex": 1.0, "CB": 1.0, "mean": 1.0}
    b = np.roll(a, 1, axis=0)  # a one-row shift: Isocortex 9/10 and 2*4/(5+5)... exactly
    d = qc.major_region_dice(a, b, table)
    assert d["Isocortex"] == pytest.approx(2 * 40 / 100) and d["CB"] == pytest.approx(2 * 40 / 100)
    x = np.arange(100.0).reshape(10, 10)
    assert qc.clipped_ncc(x, x, np.ones((10, 10), bool)) == pytest.approx(1.0)


def test_deformed_cells_move_with_the_field_and_their_borders_are_the_grid():
    disp = np.zeros((1, 12, 2))  # a 2D field: 1 x 12 voxels of 1 mm
    straight = qc.deformed_cells(disp, (1.0, 1.0), 4.0)[0]
    assert straight.tolist() == [1] * 4 + [2] * 4 + [3] * 4  # borders every 4 mm
    disp[..., 1] = 2.0  # every point shown 2 mm further on: the borders move 2 mm back
    shifted = qc.deformed_cells(disp, (1.0, 1.0), 4.0)[0]
    assert np.flatnonzero(np.diff(shifted)).tolist() == [1, 5, 9]
    with pytest.raises(CcfAlignError, match="not positive"):
        qc.deformed_cells(disp, (1.0, 1.0), 0.0)


def test_a_mask_carried_to_a_coarser_grid_keeps_its_place():
    fine = Volume.from_array(np.zeros((20, 20, 20), np.uint8), 0.1, "RAS")
    mask = np.zeros(fine.shape, bool)
    mask[4:12, 6:14, 8:16] = True  # a box from 0.4 to 1.2 mm (and so on) in world RAS
    coarse = Volume.grid((10, 10, 10), np.diag([0.2, 0.2, 0.2, 1.0]) @ _centred(), "coarse", "RAS")
    carried = qc.mask_on(mask, fine, coarse)
    world = coarse.index_to_world(np.argwhere(carried))
    assert carried.sum() == 4 * 4 * 4
    assert world[:, 0].min() >= 0.4 - 1e-9 and world[:, 0].max() <= 1.2
    np.testing.assert_array_equal(qc.mask_on(mask, fine, fine), mask)


def _centred():
    # voxel centres of the 0.2 mm grid on the 0.1 mm grid's pairs: 0.05 mm in from index 0
    m = np.eye(4)
    m[:3, 3] = 0.25
    return m
