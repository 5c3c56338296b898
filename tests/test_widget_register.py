"""Register widget: a run plots on the GUI thread and adds the warped layer; twice; cancel."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest

from napari_ccf_align.core import align
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.plugin.layer_data import image_layer_data
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets._layers import add_layer_data
from napari_ccf_align.plugin.widgets.register import RESULT_KEY, RegisterWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def setup(make_napari_viewer, template_100):
    viewer = make_napari_viewer()
    fixed = add_layer_data(viewer, image_layer_data(template_100, name="atlas", colormap="gray"))
    sim = phantom.simulate_brain(template_100)
    moving = add_layer_data(viewer, image_layer_data(sim.volume))
    model = model_for(viewer)
    model.moving_layer = moving.name
    model.set(align.centre_on_atlas(align.AlignmentState(), sim.volume, template_100))
    widget = RegisterWidget(viewer)
    widget.fixed.value, widget.moving.value = fixed, moving
    widget.method.value = (
        "rigid"  # these tests run the rigid stage (the default is the full recipe)
    )
    widget.iterations.value = 30
    widget.levels.value = "4:0.4, 2:0.2"
    return viewer, widget, sim


def _wait(qtbot, widget, timeout=60_000):
    qtbot.waitUntil(lambda: widget.run_button.enabled, timeout=timeout)


def test_run_plots_on_gui_thread_and_adds_warped_layer_twice(setup, qtbot, screenshot_dir):
    viewer, widget, sim = setup
    threads = set()
    original = widget.plot.add

    def spy(event):
        threads.add(threading.current_thread() is threading.main_thread())
        original(event)

    widget.plot.add = spy
    widget.run()
    assert not widget.run_button.enabled and widget.cancel_button.enabled
    _wait(qtbot, widget)
    assert threads == {True}, "plot updates must happen on the GUI thread"
    assert len(widget.plot.points) > 10
    assert {p.level for p in widget.plot.points} == {0, 1}
    warped = viewer.layers[f"{sim.volume.name} (rigid)"]
    result = warped.metadata[RESULT_KEY]
    assert warped.data.shape == viewer.layers["atlas"].data.shape
    assert warped.colormap.name == "magenta" and warped.blending == "additive"
    rot = np.asarray(result.params.rotation_deg)
    assert np.abs(rot - np.asarray(sim.truth.rotation_deg)).max() < 2.0
    qtbot.wait(100)
    assert widget.plot.redraws >= 2
    assert [lyr.name for lyr in viewer.layers if lyr.visible] == ["atlas", warped.name]
    viewer.reset_view()
    viewer.screenshot(str(screenshot_dir / "register_done.png"), canvas_only=False)
    widget.grab().save(str(screenshot_dir / "register_widget.png"))

    n_layers = len(viewer.layers)
    widget.run()
    _wait(qtbot, widget)
    assert len(viewer.layers) == n_layers  # the same method again replaces its own layer
    assert viewer.layers[f"{sim.volume.name} (rigid)"].metadata[RESULT_KEY] is not result
    # affine, starting from the rigid result: a layer of its own, the rigid one kept (hidden)
    widget.method.value = "affine"
    widget.start_from.value = "last"
    widget.run()
    _wait(qtbot, widget)
    assert len(viewer.layers) == n_layers + 1
    affine = viewer.layers[f"{sim.volume.name} (affine)"]
    assert [lyr.name for lyr in viewer.layers if lyr.visible] == ["atlas", affine.name]
    assert not viewer.layers[f"{sim.volume.name} (rigid)"].visible
    assert widget.runs == 3


def test_cancel_leaves_viewer_unchanged_then_runs_again(setup, qtbot, notifications):
    viewer, widget, sim = setup
    widget.iterations.value = 400
    widget.levels.value = "4:0.4, 2:0.2, 1:0"
    names = [layer.name for layer in viewer.layers]
    widget.run()
    qtbot.waitUntil(lambda: len(widget.plot.points) > 3, timeout=30_000)
    widget.cancel()
    _wait(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == names
    assert ("info", "Registration cancelled; nothing was changed.") in notifications
    widget.iterations.value = 20
    widget.levels.value = "4:0.4"
    widget.run()
    _wait(qtbot, widget)
    assert f"{sim.volume.name} (rigid)" in viewer.layers


def widget_screens():
    from .conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_plot_saves_png_and_csv(setup, qtbot, tmp_path):
    viewer, widget, sim = setup
    widget.run()
    _wait(qtbot, widget)
    assert widget.plot.full_redraws < widget.plot.redraws  # most updates only blit the line
    png = widget.plot.save_png(tmp_path / "metric.png")
    widget.plot.save_png(widget_screens() / "metric_plot.png")
    csv = widget.plot.save_csv(tmp_path / "metric.csv")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = csv.read_text().splitlines()
    assert (
        rows[0] == "level,iteration,metric,elapsed_s" and len(rows) == len(widget.plot.points) + 1
    )


def test_bad_settings_and_same_layer_are_one_sentence(setup, notifications):
    viewer, widget, sim = setup
    widget.start_from.value = "last"
    assert widget.run() is None
    assert "no result" in notifications[-1][1] and "run once from the Align state" in (
        widget.status.value
    )
    widget.start_from.value = "align"
    widget.levels.value = "4-0.4"
    assert widget.run() is None
    assert "is not 'shrink:smoothing'" in notifications[-1][1]
    widget.levels.value = "4:0.4"
    widget.moving.value = widget.fixed.value
    assert widget.run() is None
    assert "same layer" in notifications[-1][1]


def test_a_fixed_layer_that_is_no_atlas_is_refused_and_a_rerun_says_it_updates(
    setup, qtbot, notifications
):
    viewer, widget, sim = setup
    before = [layer.name for layer in viewer.layers]
    widget.fixed.value, widget.moving.value = widget.moving.value, widget.fixed.value
    assert widget.run() is None  # the sample as the "atlas", the atlas as the sample
    assert notifications[-1] == (
        "error",
        f"{sim.volume.name!r} is not an atlas (it was not loaded as the Allen CCF or an atlas "
        "file): choose the atlas as 'atlas (fixed)', or load it with the Load widget.",
    )
    assert [layer.name for layer in viewer.layers] == before  # nothing added
    widget.fixed.value, widget.moving.value = widget.moving.value, widget.fixed.value
    widget.iterations.value = 5
    for _ in range(2):
        widget.run()
        _wait(qtbot, widget)
    infos = [text for kind, text in notifications if "(rigid)" in text]
    assert infos[-2].startswith("Registered: added ") and infos[-2].endswith("(rigid)'.")
    assert infos[-1].startswith("Replaced ") and infos[-1].endswith("(rigid)' by the new run.")


def test_ten_runs_in_a_row(setup, qtbot):
    viewer, widget, sim = setup
    widget.iterations.value = 5
    widget.levels.value = "4:0.4"
    for _ in range(10):
        widget.run()
        _wait(qtbot, widget)
    assert widget.runs == 10
    assert sum(lyr.name.endswith("(rigid)") for lyr in viewer.layers) == 1


def test_failed_run_is_a_notification_and_adds_no_layer(
    make_napari_viewer, qtbot, notifications, template_100
):
    viewer = make_napari_viewer()
    fixed = add_layer_data(viewer, image_layer_data(template_100, name="atlas"))
    far = template_100.transformed(
        np.array([[1, 0, 0, 40.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    )
    moving = add_layer_data(viewer, image_layer_data(far, name="far away"))
    widget = RegisterWidget(viewer)
    widget.fixed.value, widget.moving.value = fixed, moving
    widget.method.value = "rigid"
    widget.run()
    _wait(qtbot, widget)
    assert notifications[-1][0] == "error" and "centre it on the atlas" in notifications[-1][1]
    assert [lyr.name for lyr in viewer.layers] == ["atlas", "far away"]


def test_plot_renders_fully_only_when_outgrown_and_shows_the_levels_best(qtbot):
    from napari_ccf_align.core.progress import ProgressEvent
    from napari_ccf_align.plugin.widgets.metric_plot import MetricPlot

    plot = MetricPlot("dark")
    qtbot.addWidget(plot)
    plot.resize(400, 260)
    plot.show()
    qtbot.waitExposed(plot)
    plot._redraw_if_dirty()
    start = plot.full_redraws
    # three levels of a decaying metric, each level starting higher (as SimpleITK's do)
    for level in range(3):
        for it in range(40):
            metric = -1.0 + 0.3 * level - 0.4 * (1 - np.exp(-it / 10))
            plot.add(ProgressEvent("register", 0, 0, "", level, it, metric, 0.0))
            plot._redraw_if_dirty()
    assert plot.redraws >= 120
    assert plot.full_redraws - start <= 5  # level starts and most points are only blitted
    assert len(plot._sync_level_lines()) == 2
    best = plot.best()
    assert best.level == 2 and best.iteration == 39  # the current level's, not level 1's lower one
    assert plot.header.text() == f"metric, level 3: best {best.metric:.5g} at iteration 39"
    # the y axis is the metric itself: every value drawn as it is, inside the limits
    ys = plot.line.get_ydata()  # levels are separated by a gap (NaN)
    metrics = [p.metric for p in plot.points]
    assert ys[0] == metrics[0] and ys[39] == metrics[39] and np.isnan(ys[40])
    assert ys[41] == metrics[40] and ys[-1] == metrics[-1] and np.isnan(ys).sum() == 2
    lo, hi = plot.ax.get_ylim()
    assert lo < min(metrics) and max(metrics) < hi
    assert plot.ax.get_ylabel() == "metric"

    # a new stage (SyN after affine) is drawn on its own, in its own units
    for it in range(5):
        plot.add(ProgressEvent("syn", 0, 0, "", 0, it, -1e5 - 1e3 * it, 0.0))
    plot._redraw_if_dirty()
    assert len(plot.line.get_ydata()) == 5 and plot.ax.get_ylim()[1] < -1e5 + 1e4
    assert plot.ax.get_ylabel() == "SyN energy\n(lower is better)"


def test_stop_reason_is_cut_at_its_first_sentence():
    from napari_ccf_align.plugin.widgets.register import _first_sentence

    reason = " Step too small after 21 iterations. Current step (6.1e-05) is less than minimum."
    assert _first_sentence(reason) == "Step too small after 21 iterations."
    assert _first_sentence("Maximum number of iterations (200) exceeded.") == (
        "Maximum number of iterations (200) exceeded."
    )


def test_register_widget_sets_the_anatomical_view_when_it_opens(make_napari_viewer, template_100):
    from napari_ccf_align.plugin.layer_data import AXIS_LABELS

    viewer = make_napari_viewer()
    add_layer_data(viewer, image_layer_data(template_100, name="atlas"))
    viewer.dims.axis_labels = ("0", "1", "2")  # as if nothing had set the view yet
    RegisterWidget(viewer)
    assert tuple(viewer.dims.axis_labels) == AXIS_LABELS


def _docked_align_and_register(make_napari_viewer, qtbot):
    """(viewer, Register dock) docked from the Plugins menu on the simulated brain, centred."""
    viewer = make_napari_viewer()
    _, align = viewer.window.add_plugin_dock_widget(
        "napari-ccf-align", "Initial alignment and crop"
    )
    _, widget = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Register")
    viewer.open_sample("napari-ccf-align", "simulated_brain")
    qtbot.waitUntil(lambda: align.worker is None, timeout=30_000)
    align.centre_on_atlas()
    assert widget.method.value == "rigid+affine+syn"  # the default a user gets
    widget.method.value = "rigid"
    return viewer, widget


def test_docked_from_the_plugin_menu_the_result_is_shown(make_napari_viewer, qtbot):
    # napari hands a docked widget proxies of its layers: an identity test never matches, and
    # the result used to be hidden with the inputs
    viewer, widget = _docked_align_and_register(make_napari_viewer, qtbot)
    widget.iterations.value = 20
    widget.levels.value = "4:0.4"
    widget.status.value = "an old error"
    widget.run()
    assert widget.status.value != "an old error"  # a new action clears a stale status line
    _wait(qtbot, widget)
    moving = widget.moving.value.name
    result = viewer.layers[f"{moving} (rigid)"]
    assert result.visible
    assert [lyr.name for lyr in viewer.layers if lyr.visible and lyr.name != result.name] == [
        widget.fixed.value.name
    ]


def test_rigid_then_syn_end_to_end_and_syn_after_the_last_result(setup, qtbot):
    viewer, widget, sim = setup
    widget.method.value = "rigid+syn"
    assert not widget.syn_box.native.isHidden()  # the SyN fields show for SyN methods
    widget.syn_iters.value = "10, 5"
    widget.syn_resolution.value = 200
    widget.run()
    _wait(qtbot, widget, timeout=120_000)
    name = f"{sim.volume.name} (rigid+syn)"
    assert viewer.layers[name].visible
    result = viewer.layers[name].metadata[RESULT_KEY]
    assert result.method == "rigid+syn" and result.deformable and result.forward.shape[-1] == 3
    stages = [p.stage for p in widget.plot.points]
    assert stages[0] == "register" and stages[-1] == "syn"  # one plot across both stages
    assert "SyN energy" in widget.plot.header.text()
    # SyN alone, from the result just made (its matrix: the rigid stage's)
    widget.method.value = "syn"
    assert widget.start_from.value == "last"
    widget.run()
    _wait(qtbot, widget, timeout=120_000)
    assert viewer.layers[f"{sim.volume.name} (syn)"].visible
    np.testing.assert_allclose(widget.last_result[1].matrix, result.matrix)


def test_cancel_during_syn_leaves_the_viewer_as_it_was(setup, qtbot, notifications):
    viewer, widget, sim = setup
    widget.method.value = "rigid+syn"
    widget.iterations.value = 5
    widget.syn_iters.value = "200, 200"
    widget.syn_resolution.value = 100
    names = [layer.name for layer in viewer.layers]
    widget.run()
    qtbot.waitUntil(lambda: any(p.stage == "syn" for p in widget.plot.points), timeout=60_000)
    widget.cancel()
    _wait(qtbot, widget)
    assert [layer.name for layer in viewer.layers] == names
    assert ("info", "Registration cancelled; nothing was changed.") in notifications


def test_docked_inspect_and_session_pick_the_newest_run_named_by_method_and_time(
    make_napari_viewer, qtbot
):
    viewer, widget = _docked_align_and_register(make_napari_viewer, qtbot)
    widget.iterations.value = 5
    widget.levels.value = "4:0.4"
    moving = widget.moving.value.name
    for method in ("rigid", "affine"):
        widget.method.value = method
        widget.run()
        _wait(qtbot, widget)
    # docked after two runs: the newest (affine) is picked, not the oldest
    _, inspect = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Inspect the result")
    _, sessions = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Session")
    assert inspect.result.value == sessions.result.value == f"{moving} (affine)"
    # the rigid run again replaces its layer (no new layer): the pickers still follow it
    widget.method.value = "rigid"
    widget.run()
    _wait(qtbot, widget)
    qtbot.waitUntil(lambda: inspect.result.value == f"{moving} (rigid)", timeout=10_000)
    assert sessions.result.value == f"{moving} (rigid)"
    labels = [inspect.result.native.itemText(k) for k in range(inspect.result.native.count())]
    pattern = rf"{re.escape(moving)} \((rigid|affine)\) · \d\d:\d\d:\d\d"
    assert len(labels) == 2 and all(re.fullmatch(pattern, text) for text in labels), labels
    qtbot.waitUntil(  # the figures of the picked result, computed on a worker, are in
        lambda: all(not w.is_running for w in inspect.workers.values()), timeout=30_000
    )


def test_the_metric_plot_follows_napari_theme(setup, qtbot):
    from napari_ccf_align.plugin.widgets._mpl import theme_colors

    viewer, widget, _ = setup
    viewer.theme = "dark"
    dark = widget.plot.canvas.figure.get_facecolor()
    viewer.theme = "light"
    qtbot.wait(100)
    light = widget.plot.canvas.figure.get_facecolor()
    assert dark != light
    assert widget.plot.canvas.colors == theme_colors("light")
    assert widget.plot.ax.get_facecolor() == widget.plot.canvas.figure.get_facecolor()
