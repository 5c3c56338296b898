"""Cancel latency of DIPY SyN, in this process and in its child process.

The tests assert only that a cancel stops at the next iteration (an outcome); how
long that takes depends on the machine's load, so it is measured here: the seconds
from ``token.cancel()`` to the ``Cancelled`` exception, as a ratio of one level-1
iteration measured in the same run (the baseline).

Run: ``.venv/bin/python -m benchmarks.bench_cancel``
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks.common import template_100, write
from napari_ccf_align.core.errors import Cancelled
from napari_ccf_align.core.progress import CancelToken
from napari_ccf_align.core.register import child, syn

SETTINGS = syn.SynSettings(level_iters=(3, 200, 200), working_resolution_um=200)


def _latency(template, isolated: bool) -> tuple[float, float]:
    """(seconds from cancel to the exception, median seconds of one level-1 iteration)."""
    token = CancelToken()
    stamps: list[float] = []
    when = {}

    def on_progress(event):
        if event.level == 1:
            stamps.append(time.perf_counter())
            if len(stamps) == 6:
                when["cancel"] = time.perf_counter()
                token.cancel()

    try:
        if isolated:
            child.call(
                "napari_ccf_align.core.register.syn.register",
                template,
                template,
                np.eye(4),
                SETTINGS,
                on_progress=on_progress,
                cancel=token,
            )
        else:
            syn.register(
                template, template, np.eye(4), SETTINGS, on_progress=on_progress, cancel=token
            )
    except Cancelled:
        stopped = time.perf_counter()
    else:
        raise RuntimeError("the run was not cancelled")
    iteration = statistics.median(np.diff(stamps[:6]))
    return stopped - when["cancel"], float(iteration)


def main() -> None:
    template, name = template_100()
    rows = {}
    for isolated in (False, True, False, True):
        latency, iteration = _latency(template, isolated)
        key = "child process" if isolated else "in process"
        rows.setdefault(key, []).append({"latency_s": latency, "iteration_s": iteration})
    summary = {
        key: {
            "median latency (s)": statistics.median(r["latency_s"] for r in runs),
            "latency / one iteration": statistics.median(
                r["latency_s"] / r["iteration_s"] for r in runs
            ),
        }
        for key, runs in rows.items()
    }
    for key, s in summary.items():
        print(f"{key}: {s}")
    print("written to", write("cancel", {"template": name, "runs": rows, "summary": summary}))


if __name__ == "__main__":
    main()
