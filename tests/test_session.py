"""Sessions on disk: the files are read by plain SimpleITK and nibabel exactly as we use them.

One anisotropic uint16 sample in PIR file order (``lightsheet_like``) is registered
rigid -> SyN once per module; every test reads that session back with tools that
know nothing of this package and checks that images, labels and points land where
the in-memory result puts them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.errors import CcfAlignError, WriteError
from napari_ccf_align.core.io import transforms
from napari_ccf_align.core.register import rigid, syn
from napari_ccf_align.core.runs import headless, session
from napari_ccf_align.core.volume import Volume

from .conftest import lightsheet_like

FAST_RIGID = rigid.RigidSettings(iterations=60)
FAST_SYN = syn.SynSettings(level_iters=(20, 10), working_resolution_um=200.0)
BIG_ID = 614_454_277  # the largest Allen structure id: labels must keep 32-bit values


def fake_annotation(template: Volume) -> Volume:
    """Atlas-space labels (bands of the template's grey values) with Allen-sized ids."""
    data = np.asarray(template.data, float)
    bands = np.digitize(data, np.percentile(data[data > 0], [30, 60, 85]))
    ids = np.array([0, 672, 1_009, BIG_ID, 8], np.uint32)
    return Volume(ids[bands], template.affine, "annotation", "RAS")


@pytest.fixture(scope="module")
def saved(template_100, tmp_path_factory):
    """(session as returned, folder, sample file, the sample Volume, fixed, annotation)."""
    root = tmp_path_factory.mktemp("session")
    sample, _ = lightsheet_like(template_100)
    sample_file = io.write_volume(sample, root / "sample.nii.gz")
    annotation = fake_annotation(template_100)
    fixed = headless.Fixed(template_100, annotation, "test template")
    recipe = headless.Recipe(
        method="rigid+syn",
        rigid_settings=FAST_RIGID,
        syn_settings=FAST_SYN,
        atlas_resolution_um=100,
    )
    folder = root / "run1"
    s = headless.register_file(sample_file, recipe, folder, fixed=fixed)
    moving = io.read_volume(sample_file)
    return s, folder, sample_file, moving, template_100, annotation


def test_session_folder_holds_every_file_and_the_json_says_how_it_ran(saved):
    s, folder, sample_file, moving, *_ = saved
    names = set(os.listdir(folder))
    assert {
        "session.json",
        "rigid.tfm",
        "syn_warp.nii.gz",
        "syn_inverse_warp.nii.gz",
        "warped.nii.gz",
        "annotation_in_sample.nii.gz",
        "qc_report.png",
        "qc_report.html",
    } <= names
    data = json.loads((folder / "session.json").read_text())
    assert data["method"] == "rigid+syn"
    assert data["moving"]["path"] == str(sample_file.resolve())
    assert data["moving"]["sha256"] == io.sha256_of(sample_file)
    assert data["syn_settings"]["level_iters"] == [20, 10]
    assert data["rigid_settings"]["iterations"] == 60
    assert {"SimpleITK", "dipy", "numpy", "python"} <= set(data["versions"])
    assert len(data["result"]["linear"]["trace"]) > 10 and len(data["result"]["syn"]["trace"]) > 5
    assert "after rigid+syn" in data["figures"] and "hand alignment" in data["figures"]
    assert data["timings"]["registration_s"] > 0 and data["timings"]["save_s"] > 0
    # the sample came from a file: it is referenced, not copied
    assert "moving.nii.gz" not in names


def test_plain_simpleitk_reproduces_the_warped_image(saved):
    s, folder, _, moving, fixed, _ = saved
    linear = sitk.ReadTransform(str(folder / "rigid.tfm"))
    warp = sitk.DisplacementFieldTransform(
        sitk.Cast(sitk.ReadImage(str(folder / "syn_warp.nii.gz")), sitk.sitkVectorFloat64)
    )
    sample = sitk.ReadImage(str(saved[2]), sitk.sitkFloat32)
    reference = sitk.ReadImage(str(folder / "warped.nii.gz"))
    by_sitk = sitk.Resample(
        sample, reference, sitk.CompositeTransform([linear, warp]), sitk.sitkLinear, 0.0
    )
    in_memory = s.result.warp(fixed, moving).data.astype(np.float32)
    # warped.nii.gz is in nibabel order (R, A, S): ITK's array is its reverse
    by_sitk = np.transpose(sitk.GetArrayFromImage(by_sitk))
    assert in_memory.max() > 5000
    # uint16 rounding of the in-memory image (0.5 grey level) and float32 interpolation
    # arithmetic (~1e-6 of the 10,868 range) are the only differences, but for voxels that
    # land on the sample's half-voxel edge to within rounding (in or out is a tie there)
    diff = np.abs(by_sitk - in_memory)
    bad = np.argwhere(diff > 0.51)
    if len(bad):
        idx = moving.world_to_index(s.result.to_moving(fixed.index_to_world(bad.astype(float))))
        edges = np.minimum(np.abs(idx + 0.5), np.abs(idx - (np.asarray(moving.shape) - 0.5)))
        assert np.all(edges.min(axis=1) < 1e-6), idx[edges.min(axis=1) >= 1e-6][:5]
        assert len(bad) < 1e-4 * diff.size
    # and the file itself is that image
    assert np.array_equal(
        np.transpose(sitk.GetArrayFromImage(reference)), s.result.warp(fixed, moving).data
    )


def test_plain_simpleitk_maps_points_both_ways_as_the_result_does(saved):
    s, folder, _, moving, fixed, _ = saved
    linear = sitk.ReadTransform(str(folder / "rigid.tfm"))
    fields = [
        sitk.DisplacementFieldTransform(
            sitk.Cast(sitk.ReadImage(str(folder / name)), sitk.sitkVectorFloat64)
        )
        for name in ("syn_warp.nii.gz", "syn_inverse_warp.nii.gz")
    ]
    to_sample = sitk.CompositeTransform([linear, fields[0]])
    to_atlas = sitk.CompositeTransform([fields[1], linear.GetInverse()])
    rng = np.random.default_rng(3)
    brain = np.argwhere(moving.data > np.percentile(moving.data, 70))
    sample_pts = moving.index_to_world(brain[rng.choice(len(brain), 200)])
    flip = np.diag([-1.0, -1.0, 1.0])  # RAS <-> LPS
    by_sitk = np.array([to_atlas.TransformPoint(tuple(p)) for p in sample_pts @ flip]) @ flip
    assert np.abs(by_sitk - s.result.to_atlas(sample_pts)).max() < 1e-4
    atlas_pts = fixed.index_to_world(np.argwhere(fixed.data > 0)[::997])
    by_sitk = np.array([to_sample.TransformPoint(tuple(p)) for p in atlas_pts @ flip]) @ flip
    assert np.abs(by_sitk - s.result.to_moving(atlas_pts)).max() < 1e-4
    # the SyN part moved points: the fields are not an identity that would pass trivially
    assert np.abs(s.result.to_atlas(sample_pts) - rigid_only(s).to_atlas(sample_pts)).max() > 0.05


def rigid_only(s):
    return s.result.linear


def test_annotation_in_sample_is_the_annotation_resampled_by_plain_simpleitk(saved):
    s, folder, sample_file, moving, fixed, annotation = saved
    linear = sitk.ReadTransform(str(folder / "rigid.tfm"))
    inverse = sitk.DisplacementFieldTransform(
        sitk.Cast(sitk.ReadImage(str(folder / "syn_inverse_warp.nii.gz")), sitk.sitkVectorFloat64)
    )
    from napari_ccf_align.core.volume import to_sitk

    by_sitk = sitk.Resample(
        to_sitk(annotation),
        sitk.ReadImage(str(sample_file)),
        sitk.CompositeTransform([inverse, linear.GetInverse()]),
        sitk.sitkNearestNeighbor,
        0,
        sitk.sitkUInt32,
    )
    written = sitk.ReadImage(str(folder / "annotation_in_sample.nii.gz"))
    a, b = sitk.GetArrayFromImage(by_sitk), sitk.GetArrayFromImage(written)
    assert a.shape == b.shape == moving.shape
    assert set(np.unique(b)) <= {0, 672, 1_009, BIG_ID, 8} and BIG_ID in b
    # nearest-neighbour ties at exact half-voxel points may round either way
    assert np.mean(a == b) > 0.999


def test_nibabel_reads_warped_with_the_atlas_ras_affine(saved):
    s, folder, _, moving, fixed, _ = saved
    img = nib.load(folder / "warped.nii.gz")
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    np.testing.assert_allclose(img.affine, fixed.affine, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(img.dataobj), s.result.warp(fixed, moving).data)


def test_nibabel_reads_the_displacement_fields_as_ants_style_vector_images(saved):
    s, folder, *_ = saved
    img = nib.load(folder / "syn_warp.nii.gz")
    assert img.header.get_intent()[0] == "vector"
    grid = s.result.grid
    assert img.shape == (*grid.shape, 1, 3)
    np.testing.assert_allclose(img.affine, grid.affine, atol=1e-6)
    lps = np.asarray(img.dataobj)[:, :, :, 0, :]
    np.testing.assert_allclose(lps * [-1, -1, 1], s.result.forward, atol=1e-6)


def test_session_load_restores_the_run(saved):
    s, folder, *_ = saved
    back, read_from = session.load(folder)
    assert read_from == folder
    assert back.method == s.method and back.state == s.state and back.centred
    assert back.rigid_settings == s.rigid_settings and back.syn_settings == s.syn_settings
    assert back.moving == replace(s.moving)
    np.testing.assert_allclose(back.result.matrix, s.result.matrix, atol=1e-9)
    np.testing.assert_array_equal(back.result.forward, s.result.forward)
    np.testing.assert_array_equal(back.result.backward, s.result.backward)
    np.testing.assert_allclose(back.result.grid.affine, s.result.grid.affine, atol=1e-9)
    assert back.result.trace == s.result.trace
    assert back.result.linear.trace == s.result.linear.trace
    assert back.result.linear.params == s.result.linear.params
    assert back.figures == json.loads(json.dumps(s.figures))


def test_replay_on_the_same_input_gives_the_same_transform(saved, tmp_path):
    s, folder, sample_file, moving, fixed, annotation = saved
    loaded, _ = session.load(folder)
    again = headless.register_file(
        sample_file,
        headless.recipe_of(loaded),
        tmp_path / "replayed",
        fixed=headless.Fixed(fixed, annotation, "test template"),
        write_report=False,
    )
    brain = fixed.index_to_world(np.argwhere(fixed.data > np.percentile(fixed.data, 60))[::50])
    # the linear stage is seeded: only SimpleITK's multithreaded sums (order varies) differ
    np.testing.assert_allclose(again.result.linear.matrix, s.result.linear.matrix, atol=1e-6)
    # SyN amplifies those ~1e-8 mm into hundredths of a mm (0.01-0.03 mm mean measured on the
    # Allen template and the phantom), far below the registration's own error (~0.04 mm)
    moved = np.linalg.norm(again.result.to_moving(brain) - s.result.to_moving(brain), axis=1)
    assert moved.mean() < 0.05 and moved.max() < 0.3  # mm


def test_a_changed_sample_file_is_named_when_the_session_is_read_again(saved, tmp_path):
    s, folder, sample_file, *_ = saved
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(folder, copy)
    data = json.loads((copy / "session.json").read_text())
    data["moving"]["sha256"] = "0" * 64
    (copy / "session.json").write_text(json.dumps(data))
    loaded, _ = session.load(copy)
    with pytest.raises(CcfAlignError, match="changed since the session was saved"):
        session.read_moving(loaded, copy)


def test_saving_over_a_folder_of_other_files_is_refused(saved, tmp_path):
    s, _, _, moving, fixed, _ = saved
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CcfAlignError, match="not a session folder"):
        session.save(tmp_path, s, fixed, moving, report=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_layer_made_in_memory_is_embedded_so_the_session_loads_anywhere(template_100, tmp_path):
    sample, _ = lightsheet_like(template_100)
    fixed = headless.Fixed(template_100, None, "test")
    record = session.record_input(sample)  # no file behind it
    s = headless.register_volume(
        sample,
        record,
        fixed,
        headless.Recipe(method="rigid", rigid_settings=FAST_RIGID, atlas_resolution_um=100),
        tmp_path / "s",
        write_report=False,
    )
    loaded, folder = session.load(tmp_path / "s")
    back = session.read_moving(loaded, folder)
    np.testing.assert_array_equal(back.data, sample.data)
    np.testing.assert_allclose(back.affine, sample.affine, atol=1e-6)
    np.testing.assert_allclose(loaded.result.matrix, s.result.matrix, atol=1e-9)
    assert isinstance(loaded.result, rigid.RigidResult)
    assert loaded.result.transform.GetName() == s.result.transform.GetName()


def test_field_files_reject_what_is_not_a_field(tmp_path, template_100):
    io.write_volume(template_100, tmp_path / "t.nii.gz")
    with pytest.raises(CcfAlignError, match="is not a 3D displacement field"):
        transforms.read_field(tmp_path / "t.nii.gz")


# --------------------------------------------------------------------------- killed saves

KILLED_SAVE = textwrap.dedent(
    """
    import sys, time
    from napari_ccf_align.core import io
    from napari_ccf_align.core.runs import session
    original = io.write_volume
    def slow(*args, **kwargs):
        out = original(*args, **kwargs)
        print("writing", flush=True)
        time.sleep(30)
        return out
    io.write_volume = slow
    s, folder = session.load(sys.argv[1])
    moving = session.read_moving(s, folder)
    from napari_ccf_align.core.volume import Volume
    fixed = Volume.from_array(__import__("numpy").zeros(s.atlas.shape, "float32"), 0.1, "RAS")
    fixed = Volume(fixed.data + 1, __import__("numpy").asarray(s.atlas.affine), "atlas", "RAS")
    session.save(sys.argv[1], s, fixed, moving, report=False)
    """
)


def test_a_process_killed_during_save_leaves_the_previous_session_readable(saved, tmp_path):
    import shutil

    s, folder, *_ = saved
    target = tmp_path / "session"
    shutil.copytree(folder, target)
    before = (target / "session.json").read_text()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"  # mid-save: a file is written
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (target / "session.json").read_text() == before
    loaded, read_from = session.load(target)
    assert read_from == target
    np.testing.assert_allclose(loaded.result.matrix, s.result.matrix, atol=1e-9)
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]
    assert leftovers  # the dead process's partial folder ...
    io.remove_stale_partials(tmp_path)  # ... is removed by the next save beside it
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_a_save_killed_between_its_two_renames_is_still_readable(saved, tmp_path):
    import shutil

    s, folder, *_ = saved
    parent = tmp_path
    aside = parent / f".session.{999999}.previous"
    shutil.copytree(folder, aside)  # the old session, set aside; the new one never arrived
    loaded, read_from = session.load(parent / "session")
    assert read_from == aside
    np.testing.assert_allclose(loaded.result.matrix, s.result.matrix, atol=1e-9)


def test_points_near_and_beyond_the_field_edge_map_as_simpleitk_maps_them(tmp_path):
    """The half-voxel shell around the SyN grid: ITK keeps the edge value there, zero beyond."""
    grid = Volume.grid((10, 12, 8), np.diag([0.2, 0.2, 0.2, 1.0]), "working grid")
    rng = np.random.default_rng(5)
    forward = (0.05 + 0.02 * rng.random((*grid.shape, 3))).astype(np.float32)  # nonzero edges
    backward = -forward
    matrix = np.eye(4)
    matrix[:3, :3] = frames.rotation_matrix((3.0, -2.0, 4.0))
    matrix[:3, 3] = (0.1, -0.2, 0.05)
    result = syn.SynResult(grid, forward, backward, matrix, (), 0.0, 0.0, "", syn.SynSettings())
    transforms.write_field(forward, grid, tmp_path / "w.nii.gz")
    warp = sitk.DisplacementFieldTransform(
        sitk.Cast(sitk.ReadImage(str(tmp_path / "w.nii.gz")), sitk.sitkVectorFloat64)
    )
    to_sample = sitk.CompositeTransform([transforms.linear_transform(matrix), warp])
    # from a voxel outside the grid to a voxel beyond its far edge, through the shells
    points = grid.index_to_world(rng.uniform(-1.2, np.asarray(grid.shape) + 0.2, (2000, 3)))
    flip = np.diag([-1.0, -1.0, 1.0])
    by_sitk = np.array([to_sample.TransformPoint(tuple(p)) for p in points @ flip]) @ flip
    np.testing.assert_allclose(result.to_moving(points), by_sitk, atol=1e-6)


def test_a_session_saved_onto_a_really_full_disk_says_so_and_leaves_nothing(saved, small_disk):
    s, folder, sample_file, moving, template, annotation = saved
    with pytest.raises(WriteError, match=r"disk .*full"):
        session.save(small_disk / "run", s, template, moving, annotation, False)
    assert list(small_disk.iterdir()) == []  # no partial folder left behind


def test_a_huge_samples_annotation_is_kept_on_a_block_grid_with_the_same_volumes(saved):
    """A 10 µm brain's labels would be 4.7 GB: the session keeps them on the sample's grid in
    whole blocks (as brainreg counts on its downsampled grid); each region's volume in mm³
    stays the same within a few per cent."""
    s, _, _, moving, _, annotation = saved
    full = s.result.warp_to_sample(annotation, moving)
    limit = int(np.prod(moving.shape)) // 5
    coarse_grid = session.labels_grid(moving, max_voxels=limit)
    assert coarse_grid.shape == tuple(np.asarray(moving.shape) // 2)
    assert int(np.prod(coarse_grid.shape)) <= limit
    np.testing.assert_allclose(coarse_grid.spacing, 2 * moving.spacing)
    # a block's centre is the mean of its voxels' centres
    np.testing.assert_allclose(
        coarse_grid.index_to_world(np.zeros(3)), moving.index_to_world(np.full(3, 0.5))
    )
    coarse = s.result.warp_to_sample(annotation, coarse_grid)
    for label in np.unique(full.data)[1:]:
        mm3_full = np.count_nonzero(full.data == label) * np.prod(moving.spacing)
        mm3_coarse = np.count_nonzero(coarse.data == label) * np.prod(coarse_grid.spacing)
        if mm3_full > 1.0:  # the large regions (a small one's border is most of it)
            assert mm3_coarse == pytest.approx(mm3_full, rel=0.05)
    assert session.labels_grid(moving) is moving  # an ordinary sample keeps its own grid
