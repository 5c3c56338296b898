"""The npe2 reader places layers in the RAS world exactly where the Volume is."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.volume import Volume
from napari_ccf_align.plugin.layer_data import VOLUME_KEY
from napari_ccf_align.plugin.reader import get_reader

pytestmark = pytest.mark.gui


def _volume() -> Volume:
    data = np.random.default_rng(0).random((6, 7, 8)).astype(np.float32)
    v = Volume.from_array(data, (0.1, 0.2, 0.3), "PIR", origin_mm=(1, 2, 3), name="vol")
    return v.transformed(frames.RigidParams((0, 0, 30)).matrix())


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha", ".tif"])
def test_open_each_format_in_the_ras_world(make_napari_viewer, tmp_path, suffix):
    v = _volume()
    if suffix == ".tif":  # TIFF holds axis-aligned volumes only
        v = Volume.from_array(v.data, (0.1, 0.2, 0.3), "PIR", origin_mm=(1, 2, 3))
    path = io.write_volume(v, tmp_path / f"vol{suffix}")
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-ccf-align")
    kept = layer.metadata[VOLUME_KEY]
    assert kept.data is layer.data
    # The layer shows the array in RAS axis order; every voxel value sits where the file put it.
    rng = np.random.default_rng(1)
    for i in rng.integers(0, 6, size=(10, 3)):
        world = v.index_to_world(i.astype(float))
        j = np.rint(layer.world_to_data(world)).astype(int)
        np.testing.assert_allclose(layer.data_to_world(j), world, atol=1e-5)
        assert layer.data[tuple(j)] == v.data[tuple(i)]


def test_plain_tiff_opened_with_this_plugin_says_where_to_open_it(make_napari_viewer, tmp_path):
    import tifffile

    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.ones((3, 4, 5), np.uint8), photometric="minisblack")
    assert get_reader(str(tmp_path / "x.png")) is None
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="Load volume and atlas, which asks for the orientation"):
        viewer.open(str(path), plugin="napari-ccf-align")  # napari's File > Open, ours chosen
    assert not viewer.layers
    (layer,) = viewer.open(str(path), plugin="napari")  # napari's own reader still opens it
    assert layer.data.shape == (3, 4, 5)


def test_colour_layer_is_refused():
    from napari.layers import Image

    from napari_ccf_align.core.errors import DimensionError
    from napari_ccf_align.plugin.layer_data import volume_of_layer

    with pytest.raises(DimensionError, match="colour or multiscale"):
        volume_of_layer(Image(np.zeros((10, 12, 3), np.uint8), rgb=True, name="photo"))
