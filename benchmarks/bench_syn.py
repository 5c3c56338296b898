"""DIPY SyN: our defaults against DIPY's, peak memory per working resolution, similarity gain.

Reported (all measured in this run, ratios against baselines of the same process):

- ``defaults``: time and mean end-point error (voxels, over the brain) of our default
  settings and of DIPY's own defaults (level_iters 100, 100, 25; CC sigma_diff 2,
  radius 4) on the 100 µm template under a known smooth deformation of at most
  5 voxels (``phantom.smooth_field``); their time ratio; the smallest Jacobian;
- ``memory``: peak memory allocated during a SyN run (tracemalloc, which numpy reports
  its arrays to; in a child process) at 100 µm
  and at 50 µm working resolution (the 50 µm grid is the 100 µm template upsampled),
  in bytes per voxel of the working grid, which ``syn.BYTES_PER_VOXEL`` must cover;
- ``similarity``: correlation with the atlas (over the brain) of the simulated brain
  after the affine stage and after affine -> SyN, with our defaults;
- ``antspy``: ANTsPy SyN on the same deformation where ``antspyx`` is installed.

Run: ``.venv/bin/python -m benchmarks.bench_syn``
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import template_100, write
from napari_ccf_align.core import align
from napari_ccf_align.core.register import pipeline, syn
from napari_ccf_align.core.testing import phantom

logging.getLogger("dipy").setLevel(logging.WARNING)

DIPY_DEFAULTS = syn.SynSettings(level_iters=(100, 100, 25), sigma_diff=2.0, radius=4)


def _epe(result, template, d, brain) -> float:
    y = template.index_to_world(np.argwhere(brain))
    err = np.linalg.norm(result.to_atlas(y) - y - d[brain], axis=1)
    return float(err.mean() / np.min(template.spacing))


def defaults(template) -> dict:
    from napari_ccf_align.core.results import qc

    d = phantom.smooth_field(template.shape, template.spacing, peak_voxels=5.0)
    sample = phantom.deformed(template, d)
    brain = template.data > align.tissue_threshold(template)
    out = {"epe_before_voxels": float(np.linalg.norm(d[brain], axis=1).mean() / 0.1)}
    for name, settings in (("ours", syn.SynSettings()), ("dipy", DIPY_DEFAULTS)):
        t0 = time.perf_counter()
        r = syn.register(template, sample, np.eye(4), settings)
        seconds = time.perf_counter() - t0
        out[name] = {
            "settings": settings.to_dict(),
            "seconds": round(seconds, 2),
            "epe_voxels": round(_epe(r, template, d, brain), 3),
            "min_jacobian": round(
                float(qc.jacobian_determinant(r.forward, template.spacing).min()), 3
            ),
            "iterations": len(r.trace),
        }
    out["time_ours_over_dipy"] = round(out["ours"]["seconds"] / out["dipy"]["seconds"], 2)
    return out


_CHILD = """
import json, sys, tracemalloc, numpy as np
from benchmarks.common import template_100
from napari_ccf_align.core import alignment, space, syn
from napari_ccf_align.core.volume import Volume
res = float(sys.argv[1])
t, _ = template_100()
if res < 100:
    f = int(100 // res)
    shape = tuple(s * f for s in t.shape)
    grid = Volume(np.broadcast_to(np.zeros((), np.uint8), shape), np.diag([res / 1000] * 3 + [1]))
    t = align.resample(grid, t, space.RigidParams().sitk_transform())
moving = t.with_data(np.asarray(t.data, np.float32))
settings = syn.SynSettings(level_iters=(4, 2, 1))
tracemalloc.start()
r = syn.register(t, moving, np.eye(4), settings)
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"shape": list(t.shape), "voxels": int(np.prod(t.shape)),
                  "peak_growth_bytes": int(peak)}))
"""


def memory() -> dict:
    out = {}
    for res in (100, 50):
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(res)], capture_output=True, text=True, check=True
        )
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["bytes_per_voxel"] = round(row["peak_growth_bytes"] / row["voxels"], 1)
        out[f"{res}_um"] = row
    out["BYTES_PER_VOXEL_in_code"] = syn.BYTES_PER_VOXEL
    return out


def similarity(template) -> dict:
    sim = phantom.simulate_brain(template)
    state = align.centre_on_atlas(align.AlignmentState(), sim.volume, template)
    brain = template.data > align.tissue_threshold(template)

    def corr(result) -> float:
        warped = result.warp(template, sim.volume).data
        return float(np.corrcoef(warped[brain], template.data[brain])[0, 1])

    t0 = time.perf_counter()
    affine = pipeline.run(template, sim.volume, "affine", state)
    t1 = time.perf_counter()
    deformable = syn.register(template, sim.volume, affine.matrix, syn.SynSettings(), state)
    t2 = time.perf_counter()
    return {
        "correlation_after_affine": round(corr(affine), 4),
        "correlation_after_affine_then_syn": round(corr(deformable), 4),
        "seconds_affine": round(t1 - t0, 2),
        "seconds_syn": round(t2 - t1, 2),
    }


def antspy(template) -> dict | None:
    try:
        import ants
    except ImportError:
        return None
    d = phantom.smooth_field(template.shape, template.spacing, peak_voxels=5.0)
    sample = phantom.deformed(template, d)
    fixed = ants.from_numpy(np.asarray(template.data, np.float32), spacing=(0.1, 0.1, 0.1))
    moving = ants.from_numpy(np.asarray(sample.data, np.float32), spacing=(0.1, 0.1, 0.1))
    t0 = time.perf_counter()
    ants.registration(fixed, moving, type_of_transform="SyNOnly")
    return {"seconds": round(time.perf_counter() - t0, 2)}


def main() -> dict:
    template, source = template_100()
    summary = {"data": source, "defaults": defaults(template)}
    summary["similarity"] = similarity(template)
    summary["memory"] = memory()
    summary["antspy"] = antspy(template) or "not installed (optional benchmark extra)"
    print(json.dumps(summary, indent=1))
    print("written to", write("syn", summary))
    return summary


if __name__ == "__main__":
    main()
