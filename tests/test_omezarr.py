"""OME-Zarr in and out: our stores read back exactly and through plain ome-zarr; foreign
stores give their voxel size from the metadata and ask for the orientation; registration
reads the pyramid level it needs and apply writes OME-Zarr."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_ccf_align.core import io
from napari_ccf_align.core.errors import DimensionError, OrientationError
from napari_ccf_align.core.volume import Volume

pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Reader
from ome_zarr.writer import write_multiscale

from napari_ccf_align.core.io import omezarr


def _sample(code="PIR", spacing=(0.05, 0.04, 0.03), shape=(70, 90, 80)):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, shape).astype(np.uint16)
    return Volume.from_array(data, spacing, code, origin_mm=(1.0, -2.0, 3.0), name="brain")


def _atlas_files(template, folder):
    """The template and a two-class label image on its grid, as files (an own atlas)."""
    grey = np.asarray(template.data, float)
    labels = template.with_data(np.digitize(grey, [0.3 * grey.max(), 0.6 * grey.max()])
                                .astype(np.uint32))  # fmt: skip
    return (io.write_volume(template, folder / "atlas.nii.gz"),
            io.write_volume(labels, folder / "atlas_labels.nii.gz"))  # fmt: skip


def _foreign(path, data, scale, unit="micrometer", axes="zyx"):
    group = zarr.open_group(str(path), mode="w")
    pyramid = [data, data[..., ::2, ::2, ::2]]
    ct = [[{"type": "scale", "scale": [*([1.0] * (data.ndim - 3)), *(s * f for s in scale)]}]
          for f in (1, 2)]  # fmt: skip
    kinds = {"c": "channel", "t": "time"}
    ax = [{"name": n, "type": kinds.get(n, "space"), **({"unit": unit} if n in "zyx" else {})}
          for n in axes]  # fmt: skip
    write_multiscale(pyramid, group, axes=ax, coordinate_transformations=ct)
    return path


@pytest.mark.parametrize("code", ["PIR", "RAS", "LPI"])
def test_our_store_reads_back_voxel_for_voxel(tmp_path, code):
    vol = _sample(code)
    path = io.write_volume(vol, tmp_path / "brain.ome.zarr")
    back = io.read_volume(path)
    np.testing.assert_array_equal(back.data, vol.data)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-12)
    shapes = [shape for shape, _ in omezarr.levels(path)]
    assert shapes[0] == vol.shape and shapes[1] == tuple(n // 2 for n in vol.shape)
    # level 1: its voxel 0 sits at the centre of the first 2 x 2 x 2 block
    one = io.read_volume(path, level=1)
    np.testing.assert_allclose(
        one.index_to_world(np.zeros((1, 3))), vol.index_to_world(np.full((1, 3), 0.5)), atol=1e-9
    )
    # read by zarr straight into one array, not through dask (which peaks at twice the bytes)
    direct = omezarr._read_level(path, omezarr._node(path), 0, (slice(None),) * 3)
    np.testing.assert_array_equal(direct, vol.data)
    block = vol.data[:2, :2, :2].astype(float).mean()
    assert abs(float(one.data[0, 0, 0]) - block) <= 0.5


def test_plain_ome_zarr_reads_the_atlas_scale_and_translation(tmp_path):
    """An atlas-space result (axes R, A, S): plain ome-zarr's scale and translation put
    every voxel where our affine does (µm)."""
    atlas = Volume.from_array(np.arange(24, dtype=np.uint16).reshape(2, 3, 4), 0.025, "RAS",
                              origin_mm=(0.5, 0.25, 0.0))  # fmt: skip
    path = io.write_volume(atlas, tmp_path / "in_atlas.ome.zarr")
    node = next(iter(Reader(parse_url(str(path)))()))
    ct = node.metadata["coordinateTransformations"][0]
    scale = np.asarray(next(t["scale"] for t in ct if t["type"] == "scale"))
    shift = np.asarray(next(t["translation"] for t in ct if t["type"] == "translation"))
    index = np.array([[0, 0, 0], [1, 2, 3]], float)
    np.testing.assert_allclose(shift + scale * index, atlas.index_to_world(index) * 1000.0)
    assert [a["unit"] for a in node.metadata["axes"]] == ["micrometer"] * 3
    np.testing.assert_array_equal(np.asarray(node.data[0]), atlas.data)


def test_foreign_store_gives_its_voxel_size_and_asks_for_the_orientation(tmp_path):
    data = np.random.default_rng(1).integers(0, 100, (20, 30, 40)).astype(np.uint16)
    path = _foreign(tmp_path / "scan.ome.zarr", data, (0.01, 0.005, 0.005), unit="millimeter")
    with pytest.raises(OrientationError, match="OME-Zarr, which carries no anatomical"):
        io.read_volume(path)
    vol = io.read_volume(path, orientation="asl", style="brainglobe")
    np.testing.assert_allclose(vol.spacing, [0.01, 0.005, 0.005])  # mm from the unit
    assert vol.orientation == "PIR"
    np.testing.assert_array_equal(vol.data, data)
    assert io.peek(path)[0].tolist() == [10.0, 5.0, 5.0]
    assert io.read_volume(path, orientation="PIR", level=1).shape == (10, 15, 20)
    assert omezarr.level_for(path, 20.0) == 1 and omezarr.level_for(path, 19.0) == 0
    # a file dialog picks zarr.json inside the store: that means the store
    assert io.read_volume(path / "zarr.json", orientation="PIR").shape == data.shape


def test_channels_are_refused_and_a_single_channel_is_read(tmp_path):
    two = np.zeros((2, 8, 9, 10), np.uint16)
    path = _foreign(tmp_path / "two.ome.zarr", two, (1.0, 1.0, 1.0), axes="czyx")
    with pytest.raises(DimensionError, match="c=2"):
        io.read_volume(path, orientation="PIR")
    one = _foreign(tmp_path / "one.ome.zarr", two[:1], (1.0, 1.0, 1.0), axes="czyx")
    assert io.read_volume(one, orientation="PIR").shape == (8, 9, 10)


def test_napari_reader_takes_only_stores_that_say_their_orientation(tmp_path):
    from napari_ccf_align.plugin.reader import get_reader

    ours = io.write_volume(_sample(), tmp_path / "ours.ome.zarr")
    data = np.zeros((8, 9, 10), np.uint16)
    theirs = _foreign(tmp_path / "theirs.ome.zarr", data, (1.0, 1.0, 1.0))
    with pytest.raises(OrientationError, match="which way its axes run: open it with Plugins"):
        get_reader(str(theirs))(str(theirs))
    layers = get_reader(str(ours))(str(ours))
    assert layers[0][0].shape == (70, 90, 80) or layers[0][0].ndim == 3


def test_a_changed_store_changes_its_fingerprint(tmp_path):
    path = io.write_volume(_sample(), tmp_path / "b.ome.zarr")
    before = io.sha256_of(path)
    io.write_volume(_sample(spacing=(0.05, 0.04, 0.02)), path)
    assert io.sha256_of(path) != before


@pytest.mark.slow
def test_register_reads_the_level_it_needs_and_apply_writes_ome_zarr(tmp_path, template_100):
    """A 25 µm OME-Zarr sample registered at the 100 µm atlas reads its 100 µm level; the
    session's annotation lands on that grid; apply reads the full level and writes an
    OME-Zarr in atlas space that plain ome-zarr places on the atlas grid."""
    from napari_ccf_align.cli import main
    from napari_ccf_align.core.runs import session
    from tests.conftest import lightsheet_like

    sample, _ = lightsheet_like(template_100, spacing_mm=(0.025, 0.025, 0.025), code="PIR")
    store = io.write_volume(sample, tmp_path / "brain.ome.zarr")
    sizes = [tuple(s) for _, s in omezarr.levels(store)]
    assert sizes[:3] == [(25.0,) * 3, (50.0,) * 3, (100.0,) * 3]
    out = tmp_path / "s"
    atlas_file, labels_file = _atlas_files(template_100, tmp_path)  # (nothing to download)
    assert main(["register", str(store), "--atlas-file", str(atlas_file), "--atlas-labels",
                 str(labels_file), "--method", "affine",
                 "--out", str(out), "--quiet", "--no-report"]) == 0  # fmt: skip
    saved, folder = session.load(out)
    assert saved.moving.level == 2
    assert json.loads((out / "session.json").read_text())["moving"]["level"] == 2
    moving = session.read_moving(saved, folder)
    np.testing.assert_allclose(moving.spacing, [0.1, 0.1, 0.1])
    ann = io.read_volume(out / "annotation_in_sample.nii.gz")
    assert ann.shape == moving.shape

    target = tmp_path / "in_atlas.ome.zarr"
    assert main(["apply", str(out), str(store), "--to", "atlas", "--out", str(target)]) == 0
    node = next(iter(Reader(parse_url(str(target)))()))
    ct = node.metadata["coordinateTransformations"][0]
    scale = next(t["scale"] for t in ct if t["type"] == "scale")
    np.testing.assert_allclose(scale, [100.0] * 3, rtol=1e-6)  # (a NIfTI keeps float32)
    assert node.data[0].shape == saved.atlas.shape


def test_a_store_written_onto_a_full_disk_leaves_nothing(small_disk):
    from napari_ccf_align.core.errors import WriteError

    noise = np.random.default_rng(0).random((64, 64, 64), np.float32)  # 1 MB, incompressible
    with pytest.raises(WriteError, match=r"full"):
        io.write_volume(Volume.from_array(noise, 0.1, "RAS"), small_disk / "big.ome.zarr")
    assert list(small_disk.iterdir()) == []


@pytest.mark.slow
def test_apply_to_a_store_plane_by_plane_equals_the_whole(tmp_path, template_100):
    """apply into .ome.zarr writes slab by slab: voxel for voxel the NIfTI apply's output,
    for an image to the atlas (also at another voxel size) and labels onto the full level."""
    from napari_ccf_align.cli import main
    from tests.conftest import lightsheet_like

    sample, _ = lightsheet_like(template_100, spacing_mm=(0.05, 0.05, 0.05), code="PIR")
    store = io.write_volume(sample, tmp_path / "brain.ome.zarr")
    out = tmp_path / "s"
    atlas_file, labels_file = _atlas_files(template_100, tmp_path)  # (nothing to download)
    assert main(["register", str(store), "--atlas-file", str(atlas_file), "--atlas-labels",
                 str(labels_file), "--method", "affine",
                 "--out", str(out), "--quiet", "--no-report"]) == 0  # fmt: skip
    whole, planes = tmp_path / "a.nii.gz", tmp_path / "a.ome.zarr"
    for target in (whole, planes):
        assert main(["apply", str(out), str(store), "--out", str(target)]) == 0
    a, b = io.read_volume(planes).reoriented("RAS"), io.read_volume(whole).reoriented("RAS")
    np.testing.assert_array_equal(a.data, b.data)  # (the NIfTI lists its axes as nibabel does)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-6)

    fine = tmp_path / "fine.ome.zarr"
    assert main(["apply", str(out), str(store), "--resolution", "50", "--out", str(fine)]) == 0
    grid = io.read_volume(fine)
    assert grid.shape == tuple(2 * n for n in template_100.shape)
    np.testing.assert_allclose(grid.affine[:3, 3], template_100.affine[:3, 3], atol=1e-6)
    np.testing.assert_allclose(grid.spacing, [0.05] * 3)

    labels = tmp_path / "labels.ome.zarr"
    assert main(["apply", str(out), "annotation", "--to", "sample", "--on", str(store),
                 "--out", str(labels)]) == 0  # fmt: skip
    on_full = io.read_volume(labels)
    assert on_full.shape == sample.shape
    np.testing.assert_allclose(on_full.affine, sample.affine, atol=1e-9)
    registered_grid = io.read_volume(out / "annotation_in_sample.nii.gz")
    assert registered_grid.shape != sample.shape  # the session's grid is the coarser level
