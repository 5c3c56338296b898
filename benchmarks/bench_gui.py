"""GUI responsiveness during a registration, cancel latency, and slider-to-preview latency.

A QTimer on the GUI thread fires every 10 ms during a Register run; the longest
gap between its ticks is the longest stall a user would feel. Also reported:
napari's own stall when a layer of the result's size is added on an idle GUI
thread (the floor for a run's end, and the baseline for the first run's stall),
plot redraws per second, seconds from Cancel (during level 2) to the widget being
ready again, and seconds from a slider change to the coarse preview on screen.
Needs a display: run under ``xvfb-run -a``.

Run: ``xvfb-run -a .venv/bin/python -m benchmarks.bench_gui``
"""

from __future__ import annotations

import time
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication

from benchmarks.common import template_100, write
from napari_ccf_align.core import align
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.plugin.layer_data import image_layer_data
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets._layers import PREVIEW_SUFFIX, add_layer_data
from napari_ccf_align.plugin.widgets.align import AlignWidget
from napari_ccf_align.plugin.widgets.register import RegisterWidget


def spin(until, timeout=120.0) -> None:
    end = time.perf_counter() + timeout
    while not until() and time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.001)


class Probe:
    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def __enter__(self):
        self.ticks = [time.perf_counter()]
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()

    def longest_gap_s(self) -> float:
        return float(np.max(np.diff(self.ticks))) if len(self.ticks) > 1 else float("nan")


class Watchdog:
    """Samples the GUI thread's stack every 20 ms while a :class:`Probe` has not ticked for
    ``after_s``: what the GUI thread was doing during each stall.

    Each sample is owned by the innermost frame that is either ours (``napari_ccf_align``)
    or one of napari's own costs (adding a layer, painting, Qt's event dispatch into
    napari); :meth:`ours_longest_s` is the longest unbroken run of samples owned by our
    code: the longest stall that is our work.
    """

    def __init__(self, probe: Probe, after_s: float = 0.08, every_s: float = 0.02) -> None:
        import threading

        self.probe, self.after_s, self.every_s = probe, after_s, every_s
        self.main = threading.main_thread().ident
        self.samples: list[tuple[float, list[str], str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        # faulthandler reads the stacks in C; Python frame objects of a running thread read
        # from another thread (sys._current_frames + traceback) crash CPython 3.11 at times
        import faulthandler
        import tempfile

        with tempfile.TemporaryFile("w+") as out:
            while not self._stop.wait(self.every_s):
                now = time.perf_counter()
                if now - self.probe.ticks[-1] < self.after_s:
                    continue
                out.seek(0)
                out.truncate()
                faulthandler.dump_traceback(out, all_threads=True)
                out.seek(0)
                stack = _main_stack(out.read(), self.main)
                names = [f"{Path(path).name}:{line} {name}" for path, line, name in stack]
                self.samples.append((now, names, _owner(stack)))

    def top(self, n: int = 12) -> list[tuple[str, int]]:
        """The ``n`` frames found in most stall samples, with their counts."""
        from collections import Counter

        counts = Counter(frame for _, sample, _ in self.samples for frame in set(sample))
        return counts.most_common(n)

    def ours_longest_s(self) -> float:
        """The longest run of consecutive samples owned by our code, in seconds."""
        longest = run = 0
        last = -1.0
        for t, _, owner in self.samples:
            consecutive = t - last < 1.8 * self.every_s
            run = (run + 1 if consecutive else 1) if owner == "ours" else 0
            longest = max(longest, run)
            last = t
        return round(longest * self.every_s, 3)


_NAPARI_COSTS = ("add_layer", "insert", "paintGL", "on_draw", "add_dock_widget", "event")


def _main_stack(dump: str, main: int) -> list[tuple[str, int, str]]:
    """``(file, line, function)`` of the main thread, innermost first, from faulthandler's dump."""
    import re

    stack: list[tuple[str, int, str]] = []
    inside = False
    for line in dump.splitlines():
        head = re.match(r"(?:Current thread|Thread) (0x[0-9a-f]+)", line)
        if head:
            inside = int(head.group(1), 16) == main
            continue
        frame = re.match(r'\s+File "(.*)", line (\d+) in (\S+)', line)
        if inside and frame:
            stack.append((frame.group(1), int(frame.group(2)), frame.group(3)))
    return stack


def _owner(stack: list[tuple[str, int, str]]) -> str:
    """``"ours"`` or ``"napari"``: who holds the GUI thread in this stack (innermost first)."""
    for path, _, name in stack:
        path = path.replace("\\", "/")
        if "/napari_ccf_align/" in path:
            return "ours"
        if "/napari/" in path and name in _NAPARI_COSTS:
            return "napari"
        if "/site-packages/" not in path and "<frozen" not in path:
            break  # the benchmark itself (its spin loop)
    return "napari"


def register_viewer():
    """napari with the 100 µm template, the simulated brain centred on it and the Register widget.

    Returns ``(viewer, register widget, atlas layer, brain layer, source description)``.
    """
    fixed, source = template_100()
    sim = phantom.simulate_brain(fixed)
    viewer = napari.Viewer(show=True)
    fl = add_layer_data(viewer, image_layer_data(fixed, name="atlas", colormap="gray"))
    ml = add_layer_data(viewer, image_layer_data(sim.volume))
    model = model_for(viewer)
    model.moving_layer = ml.name
    model.set(align.centre_on_atlas(align.AlignmentState(), sim.volume, fixed))
    reg = RegisterWidget(viewer)
    viewer.window.add_dock_widget(reg)
    reg.fixed.value, reg.moving.value = fl, ml
    QApplication.processEvents()
    return viewer, reg, fl, ml, source


def main() -> dict:
    viewer, reg, fl, ml, source = register_viewer()

    def measured_run():
        done_at: list[float] = []
        original_done = reg._on_done

        def on_done(outcome):
            done_at.append(time.perf_counter())
            original_done(outcome)

        redraws = reg.plot.redraws
        with Probe() as probe:
            t0 = time.perf_counter()
            worker = reg.run()
            worker.returned.disconnect()
            worker.returned.connect(on_done)
            spin(lambda: reg.run_button.enabled)
            seconds = time.perf_counter() - t0
        ticks = np.asarray(probe.ticks)
        before = ticks[ticks <= done_at[0]]
        iterating = float(np.max(np.diff(before))) if len(before) > 1 else float("nan")
        rate = (reg.plot.redraws - redraws) / seconds
        return seconds, probe.longest_gap_s(), iterating, rate

    run_s, stall, stall_iterating, redraw_rate = measured_run()  # first run adds the layer
    _, stall_again, _, _ = measured_run()  # later runs update that layer in place

    # napari's own floor: adding a layer of the result's size on an idle GUI thread, the same
    # two steps the widget takes (added hidden, shown one turn later)
    shape = viewer.layers[ml.name + " (rigid)"].data.shape
    with Probe() as probe:
        extra = viewer.add_image(np.zeros(shape, np.float32), name="baseline", visible=False)
        spin(lambda: False, timeout=0.05)
        extra.visible = True
        spin(lambda: False, timeout=0.3)
    napari_add_stall = probe.longest_gap_s()
    viewer.layers.remove(extra)

    reg.iterations.value = 2000
    reg.run()
    spin(lambda: any(p.level == 1 for p in reg.plot.points))
    t0 = time.perf_counter()
    reg.cancel()
    spin(lambda: reg.run_button.enabled)
    cancel_s = time.perf_counter() - t0

    align = AlignWidget(viewer)
    viewer.window.add_dock_widget(align)
    align.fixed.value, align.moving.value = fl, ml
    spin(lambda: align.worker is None)
    latencies = []
    slider = align.rot[2]
    slider._slider.setSliderDown(True)
    for angle in np.linspace(1, 10, 10):
        before = align.previews
        t0 = time.perf_counter()
        slider.setValue(float(angle))
        spin(lambda b=before: align.previews > b and align.worker is None)
        latencies.append(time.perf_counter() - t0)
    slider._slider.setSliderDown(False)
    assert viewer.layers[ml.name + PREVIEW_SUFFIX] is not None
    summary = {
        "data": source,
        "registration_s": round(run_s, 3),
        "longest_gui_stall_s": round(stall, 4),
        "longest_gui_stall_while_iterating_s": round(stall_iterating, 4),
        "longest_gui_stall_second_run_s": round(stall_again, 4),
        "napari_add_layer_stall_s": round(napari_add_stall, 4),
        "first_run_stall_over_napari_add_layer": round(stall / napari_add_stall, 2),
        "plot_redraws_per_s": round(redraw_rate, 1),
        "plot_points": len(reg.plot.points),
        "cancel_to_ready_s": round(cancel_s, 3),
        "slider_to_coarse_preview_median_s": round(float(np.median(latencies)), 4),
    }
    print(summary)
    print("written to", write("gui", summary))
    viewer.close()
    return summary


if __name__ == "__main__":
    main()
