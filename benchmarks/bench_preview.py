"""Align preview: time from a state change to the coarse and to the exact preview, 25 µm grid.

The 25 µm atlas cannot be downloaded here, so the 100 µm template is upsampled
to the 25 µm grid (456 x 528 x 320 voxels, 77 M): the same sizes, so the same
work. The moving volume is that grid rotated by the alignment state. Reported:
median seconds of each, and their ratio (coarse / exact) from the same process;
the exact preview against SimpleITK's own resample of the same grid (the baseline);
also the exact preview with a crop box and cropped to the tissue ("auto", 0.5 mm
margin) or to one hemisphere, where only the box's footprint on the grid is
resampled.

Run: ``.venv/bin/python -m benchmarks.bench_preview``
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from benchmarks.common import template_100, write
from napari_ccf_align.core import align, frames
from napari_ccf_align.core.volume import Volume


def grid_25(t100: Volume) -> Volume:
    shape = (456, 528, 320)
    target = Volume(np.broadcast_to(np.zeros((), np.uint8), shape), np.diag([0.025] * 3 + [1]))
    up = align.resample(target, t100, frames.RigidParams().sitk_transform())
    return replace(up, name="template 25 µm (upsampled, uint16 like the real one)")


def timed(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def main() -> dict:
    t100, source = template_100()
    fixed = grid_25(t100)
    moving = fixed
    states = [
        align.AlignmentState(
            frames.RigidParams((a, -a / 2, a / 3), (0.1, 0, 0), tuple(fixed.centre_mm))
        )
        for a in np.linspace(1, 15, 6)
    ]
    align.preview_with_box(fixed, moving, states[0], coarse=True)  # warm the cache
    it = iter(states * 10)
    coarse = timed(lambda: align.preview_with_box(fixed, moving, next(it), coarse=True), 12)
    exact = timed(lambda: align.preview_with_box(fixed, moving, next(it), coarse=False), 4)
    sitk_exact = timed(lambda: align.resample(fixed, moving, next(it).rigid.sitk_transform()), 4)
    slab = timed(lambda: next(align.exact_previews(fixed, moving, next(it), (1, 6.6))), 8)
    cropped = replace(states[0], crop=((20, 430), (20, 500), (10, 300)))
    coarse_crop = timed(lambda: align.preview_with_box(fixed, moving, cropped, True), 4)
    exact_crop = timed(lambda: align.preview_with_box(fixed, moving, cropped, False), 3)
    tissue = replace(states[0], crop=align.auto_crop(moving, 0.5))
    exact_tissue = timed(lambda: align.preview_with_box(fixed, moving, tissue, False), 3)
    half = replace(
        states[0], crop=((0, moving.shape[0] // 2), (0, moving.shape[1]), (0, moving.shape[2]))
    )
    exact_half = timed(lambda: align.preview_with_box(fixed, moving, half, False), 3)
    n_coarse = int(np.prod(align.coarse_grid(fixed).shape))
    summary = {
        "data": f"{source}, upsampled to the 25 µm grid {fixed.shape}",
        "coarse_voxels": n_coarse,
        "coarse_preview_s": round(coarse, 4),
        "exact_preview_s": round(exact, 4),
        "coarse_over_exact": round(coarse / exact, 4),
        "sitk_resample_whole_grid_s": round(sitk_exact, 4),
        "exact_over_sitk_resample": round(exact / sitk_exact, 3),
        "exact_shown_slices_s": round(slab, 4),
        "coarse_preview_with_crop_box_s": round(coarse_crop, 4),
        "exact_preview_with_crop_box_s": round(exact_crop, 4),
        "exact_preview_cropped_to_tissue_s": round(exact_tissue, 4),
        "tissue_crop": [list(r) for r in tissue.crop],
        "exact_cropped_to_tissue_over_exact": round(exact_tissue / exact, 3),
        "exact_preview_one_hemisphere_crop_s": round(exact_half, 4),
        "exact_one_hemisphere_over_exact": round(exact_half / exact, 3),
    }
    print(summary)
    print("written to", write("preview", summary))
    return summary


if __name__ == "__main__":
    main()
