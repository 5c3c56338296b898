"""Saving a session at 50 µm: what the read-backs, fields and report cost.

A rigid -> SyN result on a 50 µm atlas grid (264 x 160 x 228; the phantom, so the
benchmark runs anywhere) is saved as a session. The baseline, in the same process,
is the one file a user would write by hand: ``warped.nii.gz`` through
``io.write_volume``. Peak extra memory by tracemalloc, as a multiple of the
warped image's size.

Run: ``.venv/bin/python -m benchmarks.bench_session``
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import measure, write
from napari_ccf_align.core import io
from napari_ccf_align.core.register import rigid, syn
from napari_ccf_align.core.runs import headless, session
from napari_ccf_align.core.testing import phantom


def main() -> dict:
    template = phantom.brain_phantom(50)
    sim = phantom.simulate_brain(template)
    fixed = headless.Fixed(template, None, "phantom 50 µm")
    recipe = headless.Recipe(
        method="rigid+syn",
        rigid_settings=rigid.RigidSettings(iterations=30),
        syn_settings=syn.SynSettings(level_iters=(5, 2), working_resolution_um=100.0),
        atlas_resolution_um=50,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        s = headless.register_volume(
            sim.volume,
            session.record_input(sim.volume),
            fixed,
            recipe,
            root / "first",
            write_report=False,
        )
        warped = s.result.warp(template, sim.volume)
        size = warped.data.nbytes
        rows = {}
        for name, fn in (
            (
                "warped.nii.gz alone (baseline)",
                lambda k: io.write_volume(warped, root / f"w{k}.nii.gz"),
            ),
            (
                "session without report",
                lambda k: session.save(root / f"s{k}", s, template, sim.volume, report=False),
            ),
            (
                "session with report",
                lambda k: session.save(root / f"r{k}", s, template, sim.volume, report=True),
            ),
        ):
            runs_ = [measure(lambda k=k, fn=fn: fn(k)) for k in range(3)]
            rows[name] = {
                "seconds_median": round(float(np.median([r[0] for r in runs_])), 2),
                "peak_extra_over_image": round(max(r[1] for r in runs_) / size, 2),
            }
        base = rows["warped.nii.gz alone (baseline)"]["seconds_median"]
        for row in rows.values():
            row["ratio_to_baseline"] = round(row["seconds_median"] / base, 2)
    summary = {"atlas_grid": list(template.shape), "image_mb": round(size / 1e6, 1), **rows}
    print(summary)
    print("written to", write("session", summary))
    return summary


if __name__ == "__main__":
    main()
