"""The fused warp kernel against SimpleITK's Resample with our saved files, at several sizes.

For each grid size (100 µm, 25 µm-sized, optionally 10 µm-sized: the Allen box at that
spacing), in one process and alternating:

- warp a uint16 sample to the atlas grid through an affine + SyN result: ours
  (``SynResult.warp``, the fused kernel) against ``sitk.Resample`` with the composite of
  the session's ``rigid.tfm`` and displacement field (the baseline);
- labels (uint32) to the sample's grid: ours (``warp_to_sample``) against SimpleITK's
  nearest-neighbour resample through the inverse composite;
- the memory-bandwidth floor: a numpy copy of the output's bytes (read + write).

Run: ``.venv/bin/python -m benchmarks.bench_warp [--ten]`` (``--ten`` adds 10 µm-sized
grids: ~1.2 G voxels, images only, about 12 GB of memory and a few minutes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from benchmarks.common import template_100, write
from napari_ccf_align.core import frames, sampling
from napari_ccf_align.core.io import transforms
from napari_ccf_align.core.register import syn
from napari_ccf_align.core.volume import Volume, to_sitk


def _result(atlas: Volume) -> syn.SynResult:
    """An affine stage and a smooth field (0.2 mm) on a 200 µm working grid over the atlas."""
    matrix = frames.RigidParams((6.0, -4.0, 8.0), (0.2, -0.3, 0.1), tuple(atlas.centre_mm)).matrix()
    matrix[:3, :3] = matrix[:3, :3] @ np.diag([1.03, 0.97, 1.02])
    spacing = 0.2
    shape = tuple(int(n) for n in np.ceil(np.asarray(atlas.shape) * atlas.spacing / spacing))
    affine = np.diag([spacing, spacing, spacing, 1.0])
    grid = Volume.grid(shape, affine, "SyN grid", "RAS")
    idx = np.indices(shape, dtype=float)
    field = np.stack(
        [0.2 * np.sin(idx[(c + 1) % 3] / shape[(c + 1) % 3] * 2 * np.pi) for c in range(3)], -1
    ).astype(np.float32)
    return syn.SynResult(grid, field, -field, matrix, (), 0.0, 0.0, "", syn.SynSettings())


def _grid_at(atlas: Volume, spacing_mm: float) -> Volume:
    """The atlas's world box on a grid of ``spacing_mm`` (geometry only)."""
    size = np.asarray(atlas.shape) * atlas.spacing / spacing_mm
    shape = tuple(int(n) for n in np.rint(size))
    affine = atlas.affine @ np.diag([*(spacing_mm / atlas.spacing), 1.0])
    affine[:3, 3] = atlas.index_to_world(np.full(3, -0.5)) + spacing_mm / 2
    return Volume.grid(shape, affine, f"atlas {spacing_mm * 1000:g} µm", "RAS")


def _upsampled(volume: Volume, grid: Volume) -> Volume:
    data = sampling.linear(
        np.asarray(volume.data), sampling.index_map(volume.affine, grid.affine, np.eye(4)),
        grid.shape,
    )  # fmt: skip
    return Volume(data, grid.affine, f"{volume.name} on {grid.name}", "RAS")


def _composites(result: syn.SynResult, folder: Path):
    linear = transforms.linear_transform(result.matrix)
    warp, g = transforms.read_field(
        transforms.write_field(result.forward, result.grid, folder / "w.nii.gz")
    )
    inverse, _ = transforms.read_field(
        transforms.write_field(result.backward, result.grid, folder / "iw.nii.gz")
    )
    to_sample = sitk.CompositeTransform(
        [linear, sitk.DisplacementFieldTransform(transforms.field_image(warp, g))]
    )
    to_atlas = sitk.CompositeTransform(
        [sitk.DisplacementFieldTransform(transforms.field_image(inverse, g)), linear.GetInverse()]
    )
    return to_sample, to_atlas


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _reference(grid: Volume) -> sitk.Image:
    """A data-less SimpleITK image with ``grid``'s geometry (the resample's output grid)."""
    ref = sitk.Image([int(n) for n in grid.shape[::-1]], sitk.sitkUInt8)
    origin, spacing, direction = frames.itk_geometry(grid.affine)
    ref.SetOrigin(origin)
    ref.SetSpacing(spacing)
    ref.SetDirection(direction)
    return ref


def _one_size(template, labels, result, composites, spacing: float) -> tuple[str, dict]:
    to_sample, to_atlas = composites
    grid = _grid_at(template, spacing)
    sample = _upsampled(template, grid)  # the sample at this size (uint16)
    big = spacing <= 0.01  # 10 µm-sized: images only (uint32 labels would not fit beside them)
    lab = labels if spacing >= 0.1 or big else _upsampled(labels, grid)
    ref, sample_img, lab_img = _reference(grid), to_sitk(sample), to_sitk(lab)
    steps = {
        "ours_warp": lambda: result.warp(grid, sample),
        "sitk_warp": lambda: sitk.Resample(sample_img, ref, to_sample, sitk.sitkLinear, 0.0),
        "ours_labels": lambda: result.warp_to_sample(lab, sample),
        "sitk_labels": lambda: sitk.Resample(
            lab_img, sample_img, to_atlas, sitk.sitkNearestNeighbor, 0.0
        ),
        "copy": lambda: np.asarray(sample.data).copy(),
    }
    if big:
        steps = {k: v for k, v in steps.items() if "labels" not in k}
    timings = {k: [] for k in steps}
    for _ in range(3 if spacing > 0.01 else 1):  # alternating
        for k, fn in steps.items():
            timings[k].append(_time(fn))
    med = {k: statistics.median(v) for k, v in timings.items()}
    key = f"{spacing * 1000:g} µm ({'×'.join(map(str, grid.shape))})"
    return key, {
        **{f"{k} (s)": round(v, 3) for k, v in med.items()},
        "warp: ours / SimpleITK": round(med["ours_warp"] / med["sitk_warp"], 3),
        **(
            {}
            if big
            else {"labels: ours / SimpleITK": round(med["ours_labels"] / med["sitk_labels"], 3)}
        ),
        "warp: ours / copy floor": round(med["ours_warp"] / med["copy"], 1),
    }


def main(ten: bool = False) -> None:
    template, name = template_100()
    result = _result(template)
    cut = np.percentile(template.data, 60)
    labels = template.with_data((template.data > cut).astype(np.uint32) * 315)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        composites = _composites(result, Path(tmp))
        for spacing in [0.1, 0.025] + ([0.01] if ten else []):
            key, row = _one_size(template, labels, result, composites, spacing)
            rows[key] = row
            print(key, row, flush=True)
    print("written to", write("warp", {"template": name, "rows": rows}))


if __name__ == "__main__":
    main("--ten" in sys.argv)
