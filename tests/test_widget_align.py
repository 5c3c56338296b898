"""Align widget: sliders move the preview, undo/reset restore it, bad input is a sentence."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core import align
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.plugin.layer_data import image_layer_data, volume_of_layer
from napari_ccf_align.plugin.widgets._layers import PREVIEW_SUFFIX, add_layer_data
from napari_ccf_align.plugin.widgets._view import camera
from napari_ccf_align.plugin.widgets.align import AlignWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def setup(make_napari_viewer, qtbot, template_100):
    viewer = make_napari_viewer()
    atlas_layer = add_layer_data(
        viewer, image_layer_data(template_100, name="atlas", colormap="gray", blending="additive")
    )
    sim = phantom.simulate_brain(template_100)
    moving_layer = add_layer_data(viewer, image_layer_data(sim.volume, colormap="magenta"))
    widget = AlignWidget(viewer)
    widget.fixed.value = atlas_layer
    widget.moving.value = moving_layer
    _wait(qtbot, widget)
    return viewer, widget, sim, template_100


def _wait(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None and widget._pending is None, timeout=30_000)


def _preview(viewer, widget):
    return viewer.layers[widget.moving.value.name + PREVIEW_SUFFIX]


def test_slider_moves_preview_undo_and_reset_restore_it(setup, qtbot):
    viewer, widget, sim, fixed = setup
    before = _preview(viewer, widget).data.copy()
    widget.rot[0].setValue(20.0)
    _wait(qtbot, widget)
    after = _preview(viewer, widget).data
    assert not np.array_equal(before, after)
    assert widget.model.state.rigid.rotation_deg == (20.0, 0.0, 0.0)
    # the preview is exactly the core preview of the model's state
    expected = align.preview(fixed, sim.volume, widget.model.state)
    np.testing.assert_array_equal(after, expected.data)

    assert widget.model.undo()
    _wait(qtbot, widget)
    np.testing.assert_array_equal(_preview(viewer, widget).data, before)
    assert widget.rot[0].value() == 0.0
    assert widget.model.redo()
    _wait(qtbot, widget)
    assert widget.rot[0].value() == 20.0

    widget.model.reset()
    _wait(qtbot, widget)
    assert widget.model.state == AlignmentState()
    assert all(s.value() == 0 for s in (*widget.rot, *widget.shift))


def test_drag_is_coarse_and_one_undo_step(setup, qtbot):
    viewer, widget, sim, fixed = setup
    slider = widget.rot[2]
    slider._slider.setSliderDown(True)
    for angle in (2.0, 4.0, 6.0):
        slider.setValue(angle)
    _wait(qtbot, widget)
    slider._slider.setSliderDown(False)
    widget._released()
    _wait(qtbot, widget)
    assert widget.model.state.rigid.rotation_deg[2] == 6.0
    widget.model.undo()
    assert widget.model.state.rigid.rotation_deg[2] == 0.0  # the whole drag is one step
    _wait(qtbot, widget)


def test_state_serialises_and_reloads(setup, qtbot):
    viewer, widget, sim, fixed = setup
    widget.centre_on_atlas()
    widget.rot[1].setValue(-7.5)
    widget.flip[0].value = True
    widget.auto_crop_to_tissue()
    _wait(qtbot, widget)
    state = widget.model.state
    assert state.crop is not None and state.rigid.flip == (True, False, False)
    again = AlignmentState.from_json(state.to_json())
    assert again == state
    widget.model.reset()
    widget.model.set(again)
    _wait(qtbot, widget)
    assert widget.rot[1].value() == -7.5 and widget.flip[0].value


def test_centre_on_atlas_moves_tissue_centroid_onto_atlas(setup, qtbot):
    viewer, widget, sim, fixed = setup
    widget.match_mode.value = "tissue"
    widget.centre_on_atlas()
    moving = volume_of_layer(widget.moving.value)
    moved = widget.model.state.rigid.matrix() @ [*align.centre_of(moving, "tissue"), 1]
    np.testing.assert_allclose(moved[:3], align.centre_of(fixed, "tissue"), atol=1e-6)


def test_bad_input_is_one_sentence_and_layers_are_unchanged(
    make_napari_viewer, notifications, template_100
):
    viewer = make_napari_viewer()
    widget = AlignWidget(viewer)
    widget.centre_on_atlas()
    assert notifications[-1] == ("error", "No atlas is loaded: load it with the Load widget first.")
    moving = add_layer_data(viewer, image_layer_data(template_100, name="moving"))
    flat = add_layer_data(viewer, (np.zeros((5, 5)), {"name": "flat"}, "image"))
    widget.fixed.value = moving
    widget.moving.value = flat
    assert "is 2D but the atlas is 3D" in notifications[-1][1]
    widget.centre_on_atlas()
    assert "is 2D but the atlas is 3D" in notifications[-1][1]
    assert np.all(flat.data == 0) and [lyr.name for lyr in viewer.layers] == ["moving", "flat"]


def test_screenshots_of_2d_and_3d_preview(setup, qtbot, screenshot_dir):
    viewer, widget, sim, fixed = setup
    widget.model.set(AlignmentState(sim.truth, crop=((5, 109), (5, 127), (3, 77))))
    _wait(qtbot, widget)
    viewer.reset_view()
    viewer.screenshot(str(screenshot_dir / "align_preview_2d.png"), canvas_only=False)
    viewer.dims.ndisplay = 3
    viewer.reset_view()
    camera(viewer).angles = (10, -30, 60)
    edges = viewer.layers[widget.moving.value.name + " (crop box edges)"]
    assert edges.visible and len(edges.data) == 12
    expected = align.crop_box_edges(sim.volume, widget.model.state)  # where the box lands
    np.testing.assert_allclose(edges.data[:, 0], expected[:, 0])
    np.testing.assert_allclose(edges.data[:, 0] + edges.data[:, 1], expected[:, 1])
    assert not viewer.layers[widget.moving.value.name + " (crop box)"].visible
    viewer.screenshot(str(screenshot_dir / "align_preview_3d.png"), canvas_only=True)
    # aligned by the truth, the preview correlates with the atlas far better than unaligned
    aligned = _preview(viewer, widget).data
    raw = align.preview(fixed, sim.volume, AlignmentState())
    corr = np.corrcoef(aligned.ravel(), fixed.data.ravel())[0, 1]
    corr_raw = np.corrcoef(raw.data.ravel(), fixed.data.ravel())[0, 1]
    assert corr > corr_raw + 0.2


def test_layer_without_stated_orientation_is_refused_until_given(
    make_napari_viewer, notifications, template_100, qtbot
):
    viewer = make_napari_viewer()
    atlas_layer = add_layer_data(viewer, image_layer_data(template_100, name="atlas"))
    stack = viewer.add_image(np.asarray(template_100.reoriented("PIR").data), name="stack")
    widget = AlignWidget(viewer)
    widget.fixed.value = atlas_layer
    widget.moving.value = stack
    assert "has no stated orientation" in notifications[-1][1]
    assert widget.orientation.value == ""  # never guessed
    assert [b.value for b in widget.geometry.voxel] == [
        0.0,
        0.0,
        0.0,
    ]  # napari's scale 1 is no size
    widget.centre_on_atlas()
    assert "has no stated orientation" in notifications[-1][1]
    widget.orientation.value = "pir"
    widget.apply_geometry()  # lower case with the nibabel style: asked, not guessed
    assert "lower case" in notifications[-1][1] and "'PIR'" in notifications[-1][1]
    widget.orientation.value = "PIR"
    widget.apply_geometry()
    assert "Voxel size" in notifications[-1][1]
    for box, size in zip(widget.geometry.voxel, (100.0, 100.0, 100.0), strict=True):
        box.value = size
    widget.apply_geometry()
    _wait(qtbot, widget)
    assert widget.moving.value.name == "stack (PIR)"
    np.testing.assert_array_equal(widget.moving.value.data, template_100.data)  # RAS again
    assert stack.data.shape == (132, 80, 114)  # the user's layer is untouched


def test_far_away_volume_centred_on_atlas_keeps_its_shift(make_napari_viewer, qtbot, template_100):
    viewer = make_napari_viewer()
    atlas_layer = add_layer_data(viewer, image_layer_data(template_100, name="atlas"))
    far = template_100.transformed(
        np.array([[1, 0, 0, -30.0], [0, 1, 0, 25.0], [0, 0, 1, 0], [0, 0, 0, 1]])
    )
    moving = add_layer_data(viewer, image_layer_data(far, name="far"))
    widget = AlignWidget(viewer)
    widget.fixed.value, widget.moving.value = atlas_layer, moving
    widget.centre_on_atlas()
    _wait(qtbot, widget)
    np.testing.assert_allclose(widget.model.state.rigid.translation_mm, (30, -25, 0), atol=1e-6)
    assert [s.value() for s in widget.shift] == pytest.approx([30, -25, 0], abs=1e-3)
    widget.rot[0].setValue(5.0)  # a later change keeps the shift the sliders show
    _wait(qtbot, widget)
    np.testing.assert_allclose(widget.model.state.rigid.translation_mm, (30, -25, 0), atol=1e-3)


def test_colour_layer_as_moving_is_a_sentence(make_napari_viewer, notifications, template_100):
    viewer = make_napari_viewer()
    add_layer_data(viewer, image_layer_data(template_100, name="atlas"))
    photo = viewer.add_image(np.zeros((10, 12, 3), np.uint8), rgb=True, name="photo")
    widget = AlignWidget(viewer)
    widget.moving.value = photo
    assert "colour or multiscale" in notifications[-1][1]


def test_previews_update_one_layer_when_docked_from_the_plugin_menu(
    make_napari_viewer, qtbot, notifications
):
    # napari gives a plugin's dock widget a proxy of the viewer (and of its layers);
    # the widget must still recognise its own preview layer and update it in place
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-ccf-align", "Initial alignment and crop"
    )
    viewer.open_sample("napari-ccf-align", "simulated_brain")
    _wait(qtbot, widget)
    widget.request_preview()
    _wait(qtbot, widget)
    names = [layer.name for layer in viewer.layers]
    widget.rot[0].setValue(10.0)
    _wait(qtbot, widget)
    widget.auto_crop_to_tissue()
    _wait(qtbot, widget)
    box = widget.model.state.crop
    assert (
        "info",
        f"Cropped to the tissue with a 0.5 mm margin: voxels {box[0][0]}–{box[0][1]}, "
        f"{box[1][0]}–{box[1][1]}, {box[2][0]}–{box[2][1]}.",
    ) in notifications
    preview = [n for n in names if n.endswith(PREVIEW_SUFFIX)]
    assert len(preview) == 1
    later = [layer.name for layer in viewer.layers if not layer.name.endswith("box edges)")]
    # "simulated brain", or "simulated brain (from phantom: ...)" where the atlas is not cached
    moving_name = widget.moving.value.name
    assert set(later) == {*names, f"{moving_name} (crop box)"} and len(later) == len(set(later))
    expected = align.preview(
        volume_of_layer(widget.fixed.value),
        volume_of_layer(widget.moving.value),
        widget.model.state,
    )
    np.testing.assert_array_equal(viewer.layers[preview[0]].data, expected.data)


def test_a_request_for_the_preview_being_computed_is_not_computed_again(setup, qtbot, monkeypatch):
    viewer, widget, sim, fixed = setup
    calls = []
    original = align.exact_previews

    def counted(*args, **kwargs):
        calls.append(kwargs["state"])
        yield from original(*args, **kwargs)

    monkeypatch.setattr(align, "exact_previews", counted)
    widget.request_preview()
    widget.request_preview()  # e.g. a click on a slider that moves nothing
    _wait(qtbot, widget)
    assert len(calls) == 1
    widget.request_preview()
    widget.rot[0].setValue(5.0)  # the state changes while the first one computes
    _wait(qtbot, widget)
    assert len(calls) == 3 and calls[-1] == widget.model.state
    np.testing.assert_array_equal(
        _preview(viewer, widget).data, align.preview(fixed, sim.volume, calls[-1]).data
    )
