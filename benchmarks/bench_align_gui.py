"""Align widget at 25 µm, as the user sees it: drag, release, and the GUI meanwhile.

napari with the 25 µm grid as the atlas (the 100 µm template upsampled, as in
``bench_preview``) and that grid as the moving volume; the Align widget docked.
Reported, in seconds:

- the first preview of the process: how long the GUI thread stalls while numba
  loads the compiled sampler from its cache (or compiles it, on a fresh install);
- a drag: from a slider value to the coarse preview on screen (median over the
  steps of 8 drags of 4 steps; the first step of a drag, which turns the layer from
  the exact grid to the coarse one, separately);
- a release: to the exact slices on screen (2D), and to the whole exact grid;
- the longest GUI stall (a 10 ms QTimer's longest gap) during drags and releases;
- napari's own stall for setting a layer's data to a new array of the grid's size
  on an idle GUI thread (the baseline, same process);
- the same in the 3D view (3 drags), where the whole grid goes to the GPU.

Needs a display: ``xvfb-run -a .venv/bin/python -m benchmarks.bench_align_gui``
"""

from __future__ import annotations

import time

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from benchmarks.bench_gui import Probe, spin
from benchmarks.bench_preview import grid_25
from benchmarks.common import template_100, write
from napari_ccf_align.plugin.layer_data import image_layer_data
from napari_ccf_align.plugin.widgets._layers import PREVIEW_SUFFIX, add_layer_data
from napari_ccf_align.plugin.widgets.align import AlignWidget


def _drags(align: AlignWidget, preview, angles) -> tuple[list[float], ...]:
    """Drags of four steps about R ending at ``angles``, each released; the times seen."""
    slider = align.rot[0]
    first_step, later_steps, slab, whole, stalls = [], [], [], [], []
    for angle in angles:
        with Probe() as probe:
            slider._slider.setSliderDown(True)
            for k, step in enumerate(np.linspace(-1.5, 0, 4)):  # a drag: four values
                before = align.previews
                t0 = time.perf_counter()
                slider.setValue(float(angle + step))
                spin(lambda b=before: align.previews > b and align.worker is None)
                (first_step if k == 0 else later_steps).append(time.perf_counter() - t0)
            shown: list[float] = []
            data_events = preview.events.data.connect(
                lambda _e, s=shown: s.append(time.perf_counter())
            )
            t0 = time.perf_counter()
            slider._slider.setSliderDown(False)  # emits sliderReleased, as a mouse release does
            spin(lambda: align.worker is None and align._pending is None)
            QApplication.processEvents()
            preview.events.data.disconnect(data_events)
        slab.append(shown[0] - t0)
        whole.append(shown[-1] - t0)
        stalls.append(probe.longest_gap_s())
    return first_step, later_steps, slab, whole, stalls


def set_data_stall(preview) -> float:
    """napari's own floor: a new array of the grid's size set as a layer's data, GUI idle."""
    gaps = []
    for _ in range(3):
        fresh = np.array(preview.data)
        with Probe() as probe:
            preview.data = fresh
            spin(lambda: False, timeout=0.3)
        gaps.append(probe.longest_gap_s())
    return float(np.median(gaps))


def main() -> dict:
    t100, source = template_100()
    grid = grid_25(t100)
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    fl = add_layer_data(viewer, image_layer_data(grid, name="atlas 25 µm", colormap="gray"))
    moving = grid.with_data(grid.data, name="moving 25 µm")
    ml = add_layer_data(viewer, image_layer_data(moving, colormap="magenta"))
    QApplication.processEvents()

    align = AlignWidget(viewer)
    viewer.window.add_dock_widget(align)
    with Probe() as probe:
        align.fixed.value, align.moving.value = fl, ml
        t0 = time.perf_counter()
        align.request_preview()
        spin(lambda: align.worker is None and align._pending is None)
        spin(lambda: False, timeout=0.2)
        first_s = time.perf_counter() - t0
    first_stall = probe.longest_gap_s()
    preview = viewer.layers[ml.name + PREVIEW_SUFFIX]

    drags_2d = _drags(align, preview, np.linspace(2, 20, 8))
    napari_stall = set_data_stall(preview)
    viewer.dims.ndisplay = 3
    spin(lambda: False, timeout=0.5)
    drags_3d = _drags(align, preview, np.linspace(18, 10, 3))
    napari_stall_3d = set_data_stall(preview)
    first_step, later_steps, slab, whole, stalls = drags_2d
    summary = {
        "data": f"{source}, upsampled to the 25 µm grid {grid.shape}",
        "first_preview_s": round(first_s, 3),
        "first_preview_gui_stall_s": round(first_stall, 3),
        "drag_to_coarse_preview_median_s": round(float(np.median(later_steps)), 4),
        "drag_first_step_to_coarse_preview_median_s": round(float(np.median(first_step)), 4),
        "release_to_exact_slices_median_s": round(float(np.median(slab)), 4),
        "release_to_whole_exact_median_s": round(float(np.median(whole)), 4),
        "longest_gui_stall_drag_and_release_s": round(float(np.max(stalls)), 4),
        "median_gui_stall_drag_and_release_s": round(float(np.median(stalls)), 4),
        "napari_set_data_stall_s": round(napari_stall, 4),
        "median_stall_over_napari_set_data": round(float(np.median(stalls)) / napari_stall, 2),
        "3d_drag_to_coarse_preview_median_s": round(float(np.median(drags_3d[1])), 4),
        "3d_release_to_whole_exact_median_s": round(float(np.median(drags_3d[3])), 4),
        "3d_longest_gui_stall_drag_and_release_s": round(float(np.max(drags_3d[4])), 4),
        "3d_napari_set_data_stall_s": round(napari_stall_3d, 4),
    }
    print(summary)
    print("written to", write("align_gui", summary))
    viewer.close()
    return summary


if __name__ == "__main__":
    main()
