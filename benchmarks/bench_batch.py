"""Batch throughput on dask.distributed: brains per minute with 1 and 2 local workers.

Four light-sheet-like samples (anisotropic uint16, PIR order, each shifted
differently) are registered rigid -> SyN (SyN at 200 µm) against the 100 µm
template. Three runs in one process, so their ratio means something on a machine
whose speed varies:

- the baseline: the same brains one after another in this process (no dask);
- a LocalCluster of 1 worker (dask's own overhead);
- a LocalCluster of 2 workers (each with half the cores for SimpleITK).

Run: ``.venv/bin/python -m benchmarks.bench_batch``
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, template_100, write
from napari_ccf_align.core import io
from napari_ccf_align.core.register import rigid, syn
from napari_ccf_align.core.runs import batch, headless

sys.path.insert(0, str(ROOT))
from tests.conftest import lightsheet_like

RECIPE = headless.Recipe(
    method="rigid+syn",
    rigid_settings=rigid.RigidSettings(iterations=100),
    syn_settings=syn.SynSettings(working_resolution_um=200.0),
    atlas_resolution_um=100,
)


def main() -> dict:
    template, name = template_100()
    fixed = headless.Fixed(template, None, name)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for k in range(4):
            sample, _ = lightsheet_like(template, offset_mm=(0.2 * k, -0.1 * k, 0.1 * k))
            paths.append(io.write_volume(sample, root / f"brain{k}.nii.gz"))
        t0 = time.perf_counter()
        per_brain = {"serial_in_process": []}
        for p in paths:
            t1 = time.perf_counter()
            headless.register_file(p, RECIPE, root / "serial" / p.name[:6], fixed=fixed)
            per_brain["serial_in_process"].append(round(time.perf_counter() - t1, 1))
        serial = time.perf_counter() - t0
        timings = {"serial_in_process": serial}
        for workers in (1, 2):
            t0 = time.perf_counter()
            rows = batch.run_batch(RECIPE, paths, root / f"w{workers}", fixed, workers=workers)
            timings[f"local_cluster_{workers}"] = time.perf_counter() - t0
            assert all(r.status == "ok" for r in rows), batch.table(rows)
            per_brain[f"local_cluster_{workers}"] = [round(r.seconds, 1) for r in rows]
    per_minute = {k: round(len(paths) * 60.0 / v, 2) for k, v in timings.items()}
    summary = {
        "brains": len(paths),
        "reference": name,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "brains_per_minute": per_minute,
        "seconds_per_brain": per_brain,
        "ratio_1_worker_over_serial": round(
            per_minute["local_cluster_1"] / per_minute["serial_in_process"], 2
        ),
        "ratio_2_workers_over_1": round(
            per_minute["local_cluster_2"] / per_minute["local_cluster_1"], 2
        ),
    }
    print(summary)
    print("written to", write("batch", summary))
    return summary


if __name__ == "__main__":
    main()
