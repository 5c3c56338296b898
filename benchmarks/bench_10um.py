"""A 10 µm-sized brain end to end, peak memory per step (issue 18's 12 GB goal).

The sample is the simulated brain (from the 100 µm template) on a 10 µm PIR grid, about
1.1 G voxels of uint16, written as OME-Zarr slab by slab with its pyramid. Each step is the
command a user runs, in its own process, under ``/usr/bin/time -v`` (peak RSS):

1. ``register --method affine+syn`` at the 100 µm atlas (reads the pyramid level it needs);
2. ``apply annotation --to sample --on STORE`` -> the annotation on the full 10 µm grid
   (``.ome.zarr``, written plane by plane);
3. ``apply STORE --to atlas --resolution 10`` -> the sample on a 10 µm atlas grid
   (1320 x 800 x 1140 at the Allen CCF's box).

With ``--nifti`` the sample is also written as one uncompressed NIfTI (read whole, as a
colleague's file would be) and steps 1 and 2 run on it as well.

Run: ``.venv/bin/python benchmarks/bench_10um.py [--spacing-um 10] [--work DIR] [--nifti]``
(needs ~6 GB of disk under DIR at 10 µm; results in
``benchmarks/results/bench_end_to_end_<spacing>um.json``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import template_100, write
from napari_ccf_align.core.io import omezarr
from napari_ccf_align.core.testing import phantom

CLI = [sys.executable, "-m", "napari_ccf_align"]


def make_sample(path: Path, spacing_um: float) -> tuple[tuple[int, ...], float]:
    """The simulated brain at ``spacing_um`` as an OME-Zarr, slab by slab; (shape, seconds)."""
    template, _ = template_100()
    sim = phantom.simulate_brain(template)
    grid = phantom.lightsheet_grid(sim, (spacing_um / 1000.0,) * 3, "PIR")
    grid = type(grid).grid(grid.shape, grid.affine, "brain", "RAS")
    t0 = time.perf_counter()

    def slabs():
        n = grid.shape
        for start in range(0, n[0], omezarr.PLANES):
            stop = min(start + omezarr.PLANES, n[0])
            part = grid.cropped([(start, stop), (0, n[1]), (0, n[2])])
            yield start, phantom.lightsheet_values(sim, part)

    omezarr.write_slabs(path, grid, np.uint16, slabs())
    return grid.shape, time.perf_counter() - t0


def timed(args: list[str]) -> dict:
    """One command under /usr/bin/time -v: seconds, peak RSS (GB), exit status."""
    done = subprocess.run(["/usr/bin/time", "-v", *CLI, *args], capture_output=True, text=True)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time .*: ([\d:.]+)", done.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60**k for k, p in enumerate(reversed(parts)))
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
    return {
        "command": " ".join(["napari-ccf-align", *args]),
        "seconds": round(seconds, 1),
        "peak_rss_gb": round(rss_kb / 1e6, 2),
        "exit": done.returncode,
        "said": done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else [],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spacing-um", type=float, default=10.0)
    p.add_argument("--work", help="working folder (default: a temporary one, removed after)")
    p.add_argument("--nifti", action="store_true", help="also run steps 1-2 on a NIfTI copy")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="ccf-align-10um-"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "brain.ome.zarr"
    shape, made_s = make_sample(store, args.spacing_um)
    voxels = int(np.prod(shape))
    print(f"sample {shape} = {voxels / 1e9:.2f} G voxels, written in {made_s:.0f} s")
    session = work / "session"
    steps = [
        timed(["register", str(store), "--atlas-resolution", "100", "--method", "affine+syn",
               "--out", str(session), "--quiet"]),
        timed(["apply", str(session), "annotation", "--to", "sample", "--on", str(store),
               "--out", str(work / "annotation_on_sample.ome.zarr")]),
        timed(["apply", str(session), str(store), "--to", "atlas", "--resolution",
               str(args.spacing_um), "--out", str(work / "sample_in_atlas.ome.zarr")]),
    ]  # fmt: skip
    if args.nifti:
        from napari_ccf_align.core import io

        nifti = io.write_volume(omezarr.read(store), work / "brain.nii")
        steps += [
            timed(["register", str(nifti), "--atlas-resolution", "100", "--method",
                   "affine+syn", "--out", str(work / "session_nifti"), "--quiet"]),
            timed(["apply", str(work / "session_nifti"), "annotation", "--to", "sample", "--on",
                   str(nifti), "--out", str(work / "annotation_on_nifti.ome.zarr")]),
        ]  # fmt: skip
    for s in steps:
        print(
            f"{s['seconds']:8.1f} s  {s['peak_rss_gb']:6.2f} GB  exit {s['exit']}  {s['command']}"
        )
    write(
        f"bench_end_to_end_{args.spacing_um:g}um" + ("_nifti" if args.nifti else ""),
        {
            "sample_shape": list(shape),
            "sample_voxels": voxels,
            "spacing_um": args.spacing_um,
            "sample_written_s": round(made_s, 1),
            "steps": steps,
            "goal_peak_rss_gb": 12.0,
        },
    )
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
