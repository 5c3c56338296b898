"""The widgets as a user gets them: docked from the Plugins menu, on a real-looking sample.

napari hands a docked widget proxies of the viewer and its layers, so identity tests
fail there; the sample is anisotropic uint16 in PIR order, like a light-sheet stack.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core.align import display_range
from napari_ccf_align.core.volume import Volume
from napari_ccf_align.plugin.layer_data import image_layer_data
from napari_ccf_align.plugin.widgets._layers import PREVIEW_SUFFIX, add_layer_data

from .conftest import lightsheet_like

pytestmark = pytest.mark.gui


@pytest.fixture
def atlas_volume(template_100) -> Volume:
    meta = {**template_100.metadata, "atlas": "allen_mouse_ccf_v3", "resolution_um": 100}
    return Volume(template_100.data, template_100.affine, "atlas", "RAS", meta)


@pytest.fixture
def docked(make_napari_viewer, qtbot, atlas_volume):
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
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
    expected = display_range(sample)
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


def test_the_three_docks_open_as_tabs_each_with_the_whole_height(docked, qtbot, screenshot_dir):
    from qtpy.QtWidgets import QDockWidget

    viewer, w = docked
    qtbot.wait(50)  # the docks join their tab group one event-loop turn after docking
    main = w["align"].window()
    docks = {key: _dock(widget) for key, widget in w.items()}
    assert all(isinstance(d, QDockWidget) for d in docks.values())
    group = set(main.tabifiedDockWidgets(docks["register"])) | {docks["register"]}
    assert set(docks.values()) <= group  # one tab group, not three squeezed docks
    # every tab, the first docked one too, names its step, not "… (napari-ccf-align)"
    assert {key: d.windowTitle() for key, d in docks.items()} == {
        key: widget.step_title for key, widget in w.items()
    }
    from qtpy.QtWidgets import QLabel

    shown = [
        label.text() for d in docks.values() for label in d.titleBarWidget().findChildren(QLabel)
    ]  # napari's title bar above the dock says the same
    assert shown and not [text for text in shown if "napari-ccf-align" in text]
    qtbot.waitUntil(lambda: w["register"].isVisible(), timeout=5_000)
    docks["align"].raise_()
    qtbot.waitUntil(lambda: w["align"].isVisible(), timeout=5_000)
    assert w["align"].height() > 400
    viewer.screenshot(str(screenshot_dir / "docked_tabs.png"), canvas_only=False)


def _dock(widget):
    from qtpy.QtWidgets import QDockWidget

    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def test_crop_rows_name_the_users_file_axes_and_the_steps_hint_the_next(
    docked, qtbot, template_100, screenshot_dir
):
    viewer, w = docked
    align = w["align"]
    sample, _ = lightsheet_like(template_100)  # PIR file order, shape (66, 50, 91) here
    add_layer_data(viewer, image_layer_data(sample, colormap="magenta", blending="additive"))
    _wait(qtbot, align)
    p, i, r = sample.shape  # the file's axes: 0 runs to P, 1 to I, 2 to R
    assert [lbl.text() for lbl in align.crop_names] == [
        f"file axis 2 (runs L→R), {r} voxels; slider L→R",
        f"file axis 0 (runs A→P), {p} voxels; slider P→A",  # PIR: axis 0 runs towards P
        f"file axis 1 (runs S→I), {i} voxels; slider I→S",
    ]
    assert "Next: 'Centre on atlas'" in align.status.value
    align.centre_on_atlas()
    _wait(qtbot, align)
    assert "open 'Register' and press Run" in align.status.value
    # a crop of the A axis (file axis 0, which runs towards P) in the file's own indices
    align.model.set(align.model.state.__class__(align.model.state.rigid, ((0, r), (10, p), (0, i))))
    _wait(qtbot, align)
    assert align.crop_labels[1].text().startswith(f"file voxels 0–{p - 10} = ")
    viewer.screenshot(str(screenshot_dir / "docked_align_crop.png"), canvas_only=False)


def test_the_crop_box_layer_is_made_while_idle_so_the_first_crop_adds_no_layer(
    docked, qtbot, template_100
):
    viewer, w = docked
    align = w["align"]
    sample, _ = lightsheet_like(template_100)
    add_layer_data(viewer, image_layer_data(sample, colormap="magenta", blending="additive"))
    align.centre_on_atlas()
    _wait(qtbot, align)
    box = sample.name + " (crop box)"
    qtbot.waitUntil(lambda: box in viewer.layers, timeout=3_000)
    assert not viewer.layers[box].visible and not viewer.layers[box].data.any()
    n = len(viewer.layers)
    align.auto_crop_to_tissue()
    _wait(qtbot, align)
    assert len(viewer.layers) == n  # no layer added by the crop
    assert viewer.layers[box].visible and viewer.layers[box].data.any()


def test_the_idle_crop_box_layer_leaves_the_users_selection(docked, qtbot, template_100):
    viewer, w = docked
    sample, _ = lightsheet_like(template_100)
    add_layer_data(viewer, image_layer_data(sample, colormap="magenta", blending="additive"))
    w["align"].centre_on_atlas()
    _wait(qtbot, w["align"])
    viewer.layers.selection.active = viewer.layers["atlas"]
    qtbot.waitUntil(lambda: sample.name + " (crop box)" in viewer.layers, timeout=3_000)
    assert viewer.layers.selection.active.name == "atlas"


def test_register_and_inspect_fit_a_1280_by_800_screen(make_napari_viewer, qtbot):
    """The form, the bar, the status and the whole plot in view without scrolling, for the
    default (deformable) method; the figures table without a horizontal scroll bar."""
    from qtpy.QtWidgets import QScrollArea

    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1280, 800)
    register = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Register")[1]
    inspect = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Inspect the result")[1]
    _dock(register).raise_()
    qtbot.waitUntil(lambda: register.isVisible(), timeout=5_000)
    assert "syn" in register.method.value and register.syn_box.visible
    area = register.findChild(QScrollArea)
    plot = register.plot.canvas
    bottom = plot.mapTo(area.widget(), plot.rect().bottomLeft()).y()
    assert bottom <= area.viewport().height(), (bottom, area.viewport().height())
    _dock(inspect).raise_()
    qtbot.waitUntil(lambda: inspect.isVisible(), timeout=5_000)
    inspect._show_figures(
        {
            stage: {"NCC (99.5 %-clipped, over tissue)": 0.5, "Mattes MI (nats)": 0.4}
            for stage in ("hand alignment", "after the linear stage", "after rigid+affine+syn")
        }
    )
    qtbot.wait(50)
    table = inspect.table.native
    assert table.horizontalScrollBar().maximum() == 0  # every column in view
    assert table.horizontalHeader().length() <= table.viewport().width()
