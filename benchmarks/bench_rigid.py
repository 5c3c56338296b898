"""Rigid registration: ours against the reference pipeline on the 100 µm synthetic set.

Every case is the template through a known rotation (up to 20 degrees about each
axis) and shift (up to 1 mm) with noise and an intensity change. Both pipelines
run on the same cases in the same process; the figures reported are ratios of
their times and their mean displacement errors over the brain.

Run: ``.venv/bin/python -m benchmarks.bench_rigid [n_cases]``
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks.baseline import baseline_register
from benchmarks.common import template_100, write
from napari_ccf_align.core import align
from napari_ccf_align.core.register import rigid
from napari_ccf_align.core.testing import phantom


def cases(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield i, tuple(rng.uniform(-20, 20, 3)), tuple(rng.uniform(-1, 1, 3))


def run_set(fixed, brain, n: int, hard: bool) -> list[dict]:
    """``hard``: add a smooth 0.15 mm deformation and remove the olfactory bulb."""
    rows = []
    for i, rot, shift in cases(n, seed=1 if hard else 0):
        sim = phantom.simulate_brain(
            fixed,
            rot,
            shift,
            deformation_mm=0.15 if hard else 0.0,
            noise=0.03,
            missing_anterior_mm=10.8 if hard else None,
            seed=i,
        )
        truth = sim.truth.matrix()
        t0 = time.perf_counter()
        base = baseline_register(fixed, sim.volume)
        t_base = time.perf_counter() - t0
        t0 = time.perf_counter()
        start = align.centre_on_atlas(align.AlignmentState(), sim.volume, fixed)
        ours = rigid.register(fixed, sim.volume, start).matrix
        t_ours = time.perf_counter() - t0
        row = {
            "case": i,
            "rotation_deg": [round(a, 2) for a in rot],
            "shift_mm": [round(s, 2) for s in shift],
            "baseline_s": round(t_base, 3),
            "ours_s": round(t_ours, 3),
            "baseline_error_mm": round(phantom.error_mm(base, truth, fixed, brain), 4),
            "ours_error_mm": round(phantom.error_mm(ours, truth, fixed, brain), 4),
        }
        rows.append(row)
        print(row, flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    ratio = np.median([r["ours_s"] / r["baseline_s"] for r in rows])
    return {
        "cases": rows,
        "median_time_ratio_ours_over_baseline": round(float(ratio), 3),
        "median_error_baseline_mm": float(np.median([r["baseline_error_mm"] for r in rows])),
        "median_error_ours_mm": float(np.median([r["ours_error_mm"] for r in rows])),
        "max_error_baseline_mm": float(np.max([r["baseline_error_mm"] for r in rows])),
        "max_error_ours_mm": float(np.max([r["ours_error_mm"] for r in rows])),
    }


def main(n: int = 8) -> dict:
    fixed, source = template_100()
    brain = fixed.data > align.tissue_threshold(fixed)
    summary = {"data": source}
    for name, hard in (("rigid_truth", False), ("deformed_and_cut", True)):
        summary[name] = summarise(run_set(fixed, brain, n, hard))
        print(name, {k: v for k, v in summary[name].items() if k != "cases"}, flush=True)
    print("written to", write("rigid", summary))
    return summary


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
