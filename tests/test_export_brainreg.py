"""export-brainreg: brainreg's output folder, read back by the BrainGlobe libraries that
consume it (brainglobe-utils' point transforms, brainglobe-napari-io's brainreg readers)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.errors import OutputError
from napari_ccf_align.core.results import brainreg
from napari_ccf_align.core.volume import Volume

pytest.importorskip("brainglobe_atlasapi", reason="brainglobe-atlasapi is not installed")

NAME = "allen_mouse_100um"


def test_downsampled_grid_keeps_the_sample_box_in_the_atlas_layout():
    sample = Volume.from_array(np.zeros((30, 40, 50), np.uint16), (0.05, 0.02, 0.03), "RAS")
    grid = brainreg.downsampled_grid(sample, (0.1, 0.1, 0.1), "PIL")
    assert frames.affine_orientation(grid.affine) == "PIL"
    # axes P, I, L: the sample's A (40 x 0.02), S (50 x 0.03), R (30 x 0.05) mm
    assert grid.shape == (8, 15, 15)

    def box(v):
        edges = np.array([[-0.5, -0.5, -0.5], np.asarray(v.shape) - 0.5])
        w = v.index_to_world(edges)
        return np.sort(w, axis=0)

    np.testing.assert_allclose(box(grid), box(sample), atol=1e-9)


def test_boundaries_are_skimage_inner_boundaries():
    skimage = pytest.importorskip("skimage.segmentation")
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, (9, 10, 11)).astype(np.uint32)
    labels[:3] = 0
    expected = skimage.find_boundaries(labels, mode="inner").astype(np.int8)
    np.testing.assert_array_equal(brainreg.boundaries(labels), expected)


def test_own_template_sessions_are_refused_in_one_sentence():
    with pytest.raises(OutputError, match="register to the Allen CCF or a BrainGlobe atlas"):
        brainreg.atlas_identity("volume", "lab_template", 50)
    assert brainreg.atlas_identity("allen", "x", 25.0) == ("allen_mouse_25um", "PIR")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A sample registered (affine + SyN) to a BrainGlobe-format atlas and exported."""
    from napari_ccf_align.cli import main
    from napari_ccf_align.core.testing import brainglobe_folder
    from tests.conftest import lightsheet_like
    from tests.test_brainglobe_atlas import small_atlas

    root = tmp_path_factory.mktemp("export")
    source = small_atlas()
    brainglobe_folder.write_brainglobe_atlas(root / "bg", NAME, source)
    sample, _ = lightsheet_like(source.template, code="PIR")
    io.write_volume(sample, root / "brain.nii.gz")
    flags = ["--brainglobe-dir", str(root / "bg")]
    assert main(["register", str(root / "brain.nii.gz"), "--atlas", NAME, "--method",
                 "affine+syn", "--syn-resolution", "200", "--out", str(root / "s"), "--quiet",
                 "--no-report", *flags]) == 0  # fmt: skip
    assert main(["export-brainreg", str(root / "s"), "--out", str(root / "br"), *flags]) == 0
    return root


def test_folder_has_brainreg_files_and_conventions(exported):
    out = exported / "br"
    assert sorted(p.name for p in out.iterdir()) == sorted(brainreg.FILES)
    meta = json.loads((out / "brainreg.json").read_text())
    assert meta["atlas"] == NAME and meta["orientation"] == "asl"  # the file is PIR
    assert meta["voxel_sizes"] == ["200", "160", "125"]
    down = tifffile.imread(out / "downsampled.tiff")
    atlas_ = tifffile.imread(out / "registered_atlas.tiff")
    assert down.dtype == np.uint16 and atlas_.dtype == np.uint32
    assert down.shape == atlas_.shape == tifffile.imread(out / "deformation_field_0.tiff").shape
    assert tifffile.imread(out / "downsampled_standard.tiff").shape == (132, 80, 114)  # asr
    rows = (out / "volumes.csv").read_text().splitlines()
    assert rows[0] == "structure_name,left_volume_mm3,right_volume_mm3,total_volume_mm3"
    assert len(rows) >= 3  # the phantom has two regions, the Allen atlas hundreds


def _bg_atlas(folder):
    from brainglobe_atlasapi import BrainGlobeAtlas

    return BrainGlobeAtlas(NAME, brainglobe_dir=folder, check_latest=False)


def test_brainglobe_utils_maps_downsampled_points_where_we_do(exported):
    """brainglobe-utils reads our deformation fields and sends downsampled voxels to the
    atlas voxels our own transforms give."""
    from brainglobe_utils.brainreg.transform import (
        transform_points_from_downsampled_to_atlas_space,
    )

    from napari_ccf_align.core.runs import session

    out = exported / "br"
    bg = _bg_atlas(exported / "bg")
    fields = [out / f"deformation_field_{k}.tiff" for k in range(3)]
    down = tifffile.imread(out / "downsampled.tiff")
    brain = np.argwhere(down > np.percentile(down, 60))[::37].astype(float)
    theirs, outside = transform_points_from_downsampled_to_atlas_space(
        brain, bg, fields, warn_out_of_bounds=False
    )
    assert not outside

    saved, folder = session.load(exported / "s")
    sample = session.read_moving(saved, folder)
    layout = brainreg.BRAINGLOBE_LAYOUT
    grid = brainreg.downsampled_grid(sample, (0.1, 0.1, 0.1), layout)
    template = saved.atlas.grid().reoriented(layout)
    ours = template.world_to_index(saved.result.to_atlas(grid.index_to_world(brain)))
    assert np.abs(theirs - ours).max() <= 0.5 + 1e-3  # they round to whole voxels
    assert bg.reference.shape == template.shape


def test_brainglobe_utils_takes_raw_points_through_the_whole_chain(exported):
    """From a point in the raw file through brainreg.json's orientation and voxel sizes,
    the downsampled space and the fields, to the atlas: within a voxel of ours."""
    import brainglobe_space as bgs
    from brainglobe_utils.brainreg.transform import (
        transform_points_from_downsampled_to_atlas_space,
        transform_points_from_raw_to_downsampled_space,
    )

    from napari_ccf_align.core.runs import session

    out = exported / "br"
    meta = json.loads((out / "brainreg.json").read_text())
    bg = _bg_atlas(exported / "bg")
    down = tifffile.imread(out / "downsampled.tiff")
    space = bgs.AnatomicalSpace("asr", shape=down.shape, resolution=bg.resolution)
    saved, folder = session.load(exported / "s")
    sample = session.read_moving(saved, folder)
    raw = np.argwhere(np.asarray(sample.data) > np.percentile(sample.data, 60))[::53]
    raw = raw.astype(float)
    moved = transform_points_from_raw_to_downsampled_space(
        raw, np.asarray(sample.data), meta["orientation"], meta["voxel_sizes"], space
    )
    # their flip sends index 0 to n (a voxel-edge convention): those few fall off the far edge
    keep = np.all((np.round(moved) >= 0) & (np.round(moved) < down.shape), axis=1)
    assert keep.mean() > 0.97
    fields = [out / f"deformation_field_{k}.tiff" for k in range(3)]
    theirs, outside = transform_points_from_downsampled_to_atlas_space(
        moved[keep], bg, fields, warn_out_of_bounds=False
    )
    assert not outside
    raw = raw[keep]
    template = saved.atlas.grid().reoriented(brainreg.BRAINGLOBE_LAYOUT)
    ours = template.world_to_index(saved.result.to_atlas(sample.index_to_world(raw)))
    # brainglobe-space scales points as voxel corners and flips p to n - p, where voxel
    # centres go to (p + 0.5) r - 0.5 and n - 1 - p: 0.5 - r/2 apart on a kept axis and
    # 0.5 + r/2 on a flipped one (r = downsampled voxels per raw voxel, here 0.8 - 2), plus
    # their rounding to whole voxels. A wrong orientation or voxel size would be tens apart.
    grid = brainreg.downsampled_grid(
        sample, np.asarray(bg.resolution) / 1000.0, brainreg.BRAINGLOBE_LAYOUT
    )
    ours_down = grid.world_to_index(sample.index_to_world(raw))
    assert np.abs(moved[keep] - ours_down).max() <= 1.55
    err = np.abs(theirs - ours)
    assert np.median(err) <= 1.0 and err.max() <= 2.5


def test_brainglobe_napari_io_reads_the_folder_onto_the_sample(exported, monkeypatch):
    """brainglobe-napari-io's sample-space reader puts our registered atlas back on the raw
    sample (its orientation, its scale), where it matches our own annotation_in_sample."""
    import os

    pytest.importorskip("brainglobe_napari_io", reason="brainglobe-napari-io is not installed")
    from brainglobe_atlasapi import BrainGlobeAtlas, config
    from brainglobe_napari_io.brainreg import reader_dir_sample_space

    conf = config.CONFIG_PATH
    conf.parent.mkdir(parents=True, exist_ok=True)
    template = dict(config.TEMPLATE_CONF_DICT)
    template["default_dirs"] = {
        "brainglobe_dir": str(exported / "bg"),
        "interm_download_dir": str(exported / "bg"),
    }
    monkeypatch.setattr(config, "CONFIG_PATH", conf.parent / "for-this-test.conf")
    config.write_default_config(config.CONFIG_PATH, template)
    monkeypatch.setattr(BrainGlobeAtlas, "check_latest_version", lambda self, **k: None)
    assert os.environ["BRAINGLOBE_CONFIG_DIR"]  # (conftest keeps BrainGlobe out of $HOME)

    layers = reader_dir_sample_space.reader_function(str(exported / "br"))
    by_name = {layer[1]["name"]: layer for layer in layers}
    data, kwargs, kind = by_name[NAME]
    assert kind == "labels"
    ours = io.read_volume(exported / "s" / "annotation_in_sample.nii.gz")
    scale = np.asarray(kwargs["scale"], float)
    assert np.allclose(scale * frames.spacing_of(ours.affine) * 1000.0, 100.0, rtol=0.02)
    # each raw voxel centre in their layer's index (napari's scale: raw voxels per voxel)
    raw = np.argwhere(np.ones(ours.shape, bool))[::7]
    theirs_idx = np.clip(((raw + 0.5) / scale).astype(int), 0, np.asarray(data.shape) - 1)
    theirs = np.asarray(data)[tuple(theirs_idx.T)]
    mine = np.asarray(ours.data)[tuple(raw.T)]
    inside = (theirs > 0) | (mine > 0)
    # 670 regions at 100 µm over 125 - 200 µm voxels: a quarter of the voxels lie on a
    # boundary, where half a voxel decides; a wrong axis order or scale agrees on ~0
    assert np.mean(theirs[inside] == mine[inside]) > 0.7

    # left and right: the hemisphere layer on the sample matches the atlas's own map put
    # there by our transforms (a mirrored export would swap nearly all of them)
    from napari_ccf_align.core.io import brainglobe
    from napari_ccf_align.core.runs import session

    saved, folder = session.load(exported / "s")
    sides = brainglobe.load_brainglobe_atlas(NAME, exported / "bg").hemispheres
    on_sample = saved.result.warp_to_sample(sides, ours, labels=True).data[tuple(raw.T)]
    hemi = np.asarray(by_name["Hemispheres"][0])[tuple(theirs_idx.T)]
    both = (hemi > 0) & (on_sample > 0)
    assert np.mean(hemi[both] == on_sample[both]) > 0.95
