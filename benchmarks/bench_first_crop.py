"""The first crop after a fresh install: how long the GUI thread stalls.

numba compiles its kernels on their first call. Run with an empty numba cache
(``NUMBA_CACHE_DIR`` set to a new folder, as on a fresh install) this measures,
with a 10 ms QTimer on the GUI thread (its longest gap = the longest stall a user
feels):

- docking the Align widget (from the Plugins menu, as a user does);
- opening the simulated brain (napari runs sample-data functions on the GUI thread);
- "Centre on atlas" and the first preview (napari adds the preview layer);
- the second after it, while the user looks (the widget adds the hidden crop-box layer
  0.5 s after the preview, so that the first crop only sets its data);
- the first "Auto crop to tissue" and its preview, which paints the crop box
  with the row kernel;
- napari's own stalls on an idle GUI thread for setting a layer's data to a new
  array of the preview's size, and for adding an image layer of that size (the
  first crop adds the crop-box layer): the baselines, same process.

Run: ``NUMBA_CACHE_DIR=$(mktemp -d) xvfb-run -a .venv/bin/python -m benchmarks.bench_first_crop``
"""

from __future__ import annotations

import os
import time

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from benchmarks.bench_align_gui import set_data_stall
from benchmarks.bench_gui import Probe, spin
from benchmarks.common import write
from napari_ccf_align.plugin.widgets._layers import PREVIEW_SUFFIX


def main() -> dict:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    QApplication.processEvents()
    with Probe() as dock:
        _, align = viewer.window.add_plugin_dock_widget(
            "napari-ccf-align", "Initial alignment and crop"
        )
        spin(lambda: False, timeout=0.3)
    with Probe() as first:
        viewer.open_sample("napari-ccf-align", "simulated_brain")
        spin(lambda: False, timeout=0.3)
    with Probe() as centre:  # the step the Load widget hints at; makes the first preview
        align.centre_on_atlas()
        spin(lambda: align.worker is None and align._pending is None)
        spin(lambda: False, timeout=0.3)
    with Probe() as idle:  # a person looks at the preview before cropping
        spin(lambda: False, timeout=1.0)
    t0 = time.perf_counter()
    with Probe() as crop:
        align.auto_crop_to_tissue()
        spin(lambda: align.worker is None and align._pending is None)
        spin(lambda: False, timeout=0.3)
    crop_s = time.perf_counter() - t0
    preview = next(lyr for lyr in viewer.layers if lyr.name.endswith(PREVIEW_SUFFIX))
    napari_stall = set_data_stall(preview)
    adds = []
    for k in range(3):
        with Probe() as base:
            viewer.add_image(np.zeros_like(preview.data, dtype=np.uint8), name=f"baseline {k}")
            spin(lambda: False, timeout=0.3)
        adds.append(base.longest_gap_s())
    napari_add = float(np.median(adds))
    summary = {
        "numba_cache": os.environ.get("NUMBA_CACHE_DIR", "(default)"),
        "dock_align_gui_stall_s": round(dock.longest_gap_s(), 3),
        "open_sample_gui_stall_s": round(first.longest_gap_s(), 3),
        "centre_on_atlas_first_preview_gui_stall_s": round(centre.longest_gap_s(), 3),
        "idle_after_preview_gui_stall_s": round(idle.longest_gap_s(), 3),
        "first_crop_gui_stall_s": round(crop.longest_gap_s(), 3),
        "first_crop_to_preview_s": round(crop_s, 3),
        "napari_set_data_stall_s": round(napari_stall, 3),
        "napari_add_image_stall_s": round(napari_add, 3),
        "first_crop_stall_over_napari_add_image": round(crop.longest_gap_s() / napari_add, 2),
    }
    print(summary)
    print("written to", write("first_crop", summary))
    viewer.close()
    return summary


if __name__ == "__main__":
    main()
