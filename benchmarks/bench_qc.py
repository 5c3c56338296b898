"""QC maps of a 50 µm field (264 x 160 x 228 x 3, float32): time and peak extra memory.

Goal (issue 12): Jacobian determinant and deformation grid <= 2 s each, peak extra
memory <= 3 x the field's size. Memory by tracemalloc (numpy reports its arrays);
the field itself is made before tracing starts.

Run: ``.venv/bin/python -m benchmarks.bench_qc``
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import measure, write
from napari_ccf_align.core.results import qc
from napari_ccf_align.core.testing import phantom


def main() -> dict:
    shape, spacing = (264, 160, 228), (0.05, 0.05, 0.05)
    field = phantom.smooth_field(shape, spacing, peak_voxels=5.0).astype(np.float32)
    size = field.nbytes
    rows = {}
    for name, fn in (
        ("jacobian", lambda: qc.jacobian_determinant(field, spacing)),
        ("grid", lambda: qc.deformation_grid(field, spacing, 0.5)),
        ("magnitude", lambda: qc.displacement_magnitude(field)),
    ):
        runs = [measure(fn) for _ in range(3)]
        rows[name] = {
            "seconds_median": round(float(np.median([r[0] for r in runs])), 3),
            "peak_extra_over_field": round(max(r[1] for r in runs) / size, 2),
        }
    summary = {"field": list(field.shape), "field_mb": round(size / 1e6, 1), **rows}
    print(summary)
    print("written to", write("qc", summary))
    return summary


if __name__ == "__main__":
    main()
