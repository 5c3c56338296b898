"""GUI stalls while DIPY SyN runs on a worker thread (its loop is Python and holds the GIL).

napari with the 100 µm template and the simulated brain, the Register widget running
"rigid → SyN" (SyN at 100 µm, our defaults). A 10 ms QTimer on the GUI thread: its
longest gap while the SimpleITK stage iterates (the baseline, same run) and while
SyN iterates is the longest stall a user feels. Goal: <= 0.1 s. Measured with SyN on the
worker thread and with SyN in its own process (``core/isolated.py``).

Run: ``xvfb-run -a .venv/bin/python -m benchmarks.bench_syn_gui``
"""

from __future__ import annotations

import time

import numpy as np
from qtpy.QtWidgets import QApplication

from benchmarks.bench_gui import Probe, register_viewer, spin
from benchmarks.common import write


def measure(isolated: bool) -> dict:
    viewer, reg, _, _, source = register_viewer()
    reg.method.value = "rigid+syn"
    reg.syn_process.value = isolated
    QApplication.processEvents()
    stage_at: dict[str, float] = {}
    original = reg._on_progress

    def spy(event):
        stage_at.setdefault(event.stage, time.perf_counter())
        stage_at["last " + event.stage] = time.perf_counter()
        original(event)

    reg._on_progress = spy
    reg.run()  # (the relay was connected to the spy's target at run time)
    with Probe() as probe:
        spin(lambda: reg.run_button.enabled, timeout=600)
    ticks = np.asarray(probe.ticks)

    def longest(a: float, b: float) -> float:
        inside = ticks[(ticks >= a) & (ticks <= b)]
        return float(np.max(np.diff(inside))) if len(inside) > 1 else float("nan")

    rigid_stall = longest(stage_at["register"], stage_at["last register"])
    syn_stall = longest(stage_at["syn"], stage_at["last syn"])
    gaps = np.diff(ticks[(ticks >= stage_at["syn"]) & (ticks <= stage_at["last syn"])])
    summary = {
        "data": source,
        "syn_in_own_process": isolated,
        "syn_seconds": round(stage_at["last syn"] - stage_at["syn"], 2),
        "longest_gui_stall_rigid_stage_s": round(rigid_stall, 4),
        "longest_gui_stall_syn_stage_s": round(syn_stall, 4),
        "syn_stalls_over_0.1_s": int(np.sum(gaps > 0.1)),
        "syn_stall_p99_s": round(float(np.percentile(gaps, 99)), 4),
        "syn_over_rigid_stall": round(syn_stall / rigid_stall, 2),
    }
    viewer.close()
    return summary


def main() -> dict:
    summary = {"thread": measure(False), "process": measure(True)}
    print(summary)
    print("written to", write("syn_gui", summary))
    return summary


if __name__ == "__main__":
    main()
