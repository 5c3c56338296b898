"""The widgets as a user gets them: docked from the Plugins menu, on a real-looking sample.

napari hands a docked widget proxies of the viewer and its layers, so identity tests
fail there; the sample is anisotropic uint16 in PIR order, like a light-sheet stack.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core import alignment
from napari_ccf_align.core.volume import Volume
from napari_ccf_align.layer_data import image_layer_data
from napari_ccf_align.widgets._layers import PREVIEW_SUFFIX, add_layer_data

from .conftest import lightsheet_like

pytestmark = pytest.mark.gui


@pytest.fixture
def atlas_volume(template_100) -> Volume:
    meta = {**template_100.metadata, "atlas": "allen_mouse_ccf_v3", "resolution_um": 100}
    return Volume(template_100.data, template_100.affine, "atlas", "RAS", meta)


@pytest.fixture
def docked(make_napari_viewer, qtbot, atlas_volume):
    viewer = make_napari_viewer()
    widgets = {
        key: viewer.window.add_plugin_dock_widget("napari-ccf-align", title)[1]
        for key, title in (
            ("load", "Load volume and atlas"),
            ("align", "Initial alignment and crop"),
            ("register", "Register"),
        )
    }
    add_layer_data(viewer, image_layer_data(atlas_volume, colormap="gray", blending="additive"))
    return viewer, widgets


def _wait(qtbot, align):
    qtbot.waitUntil(lambda: align.worker is None and align._pending is None, timeout=30_000)


def test_preview_contrast_is_the_samples_range_and_keeps_the_users_edit(
    docked, qtbot, template_100
):
    viewer, w = docked
    align = w["align"]
    sample, _ = lightsheet_like(template_100, offset_mm=(9.0, 0, 0))  # mostly off the atlas
    add_layer_data(viewer, image_layer_data(sample, colormap="magenta", blending="additive"))
    _wait(qtbot, align)
    align.request_preview()
    _wait(qtbot, align)
    preview = viewer.layers[sample.name + PREVIEW_SUFFIX]
    expected = alignment.display_range(sample)
    assert expected[1] > 5_000  # the sample's range, not the nearly empty first preview's
    np.testing.assert_allclose(preview.contrast_limits, expected)
    align.centre_on_atlas()
    _wait(qtbot, align)
    np.testing.assert_allclose(preview.contrast_limits, expected)
    preview.contrast_limits = (0.0, 3_000.0)  # the user's own edit
    align.rot[2].setValue(15.0)
    _wait(qtbot, align)
    assert align.previews >= 3
    np.testing.assert_allclose(preview.contrast_limits, (0.0, 3_000.0))
