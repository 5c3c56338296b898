"""Shared pieces of the benchmarks: the 100 µm template and where results go."""

from __future__ import annotations

import json
import platform
import time
import tracemalloc
from pathlib import Path

from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.testing import phantom

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = ROOT.parent / "shared" / "data"


def template_100():
    """The real Allen 100 µm template (RAS) when ../shared/data has it, else the phantom."""
    path = SHARED / "average_template_100.nrrd"
    if path.is_file():
        return atlas.read_allen_nrrd(path, 100), "Allen CCF v3 100 µm"
    return phantom.brain_phantom(100), "procedural phantom 100 µm"


def write(name: str, data: dict) -> Path:
    """Write a result file (JSON) with the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor(),
            "nodes": platform.node(),
        },
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1))
    return path


def measure(fn) -> tuple[float, int]:
    """``(seconds, peak bytes allocated)`` of one call of ``fn()`` (memory by tracemalloc)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak
