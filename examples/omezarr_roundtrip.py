"""A multi-resolution OME-Zarr sample: registration reads the pyramid level it needs, apply
writes the result as OME-Zarr with the atlas's scale and translation.

Run: ``.venv/bin/python examples/omezarr_roundtrip.py [OUTPUT_FOLDER]``
"""

import sys
import tempfile
from pathlib import Path

from _example_atlas import example_atlas, simulated_sample
from napari_ccf_align.cli import main
from napari_ccf_align.core import io
from napari_ccf_align.core.io import omezarr
from napari_ccf_align.core.testing import brainglobe_folder

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ccf-align-zarr-"))
atlases = out / "brainglobe"
brainglobe_folder.write_brainglobe_atlas(atlases, "allen_mouse_100um", example_atlas())
sample = io.read_volume(simulated_sample(out, spacing_mm=(0.025, 0.025, 0.025)))
store = io.write_volume(sample, out / "brain.ome.zarr")  # 25 µm, with a 50, 100, 200 µm pyramid
for k, (shape, size) in enumerate(omezarr.levels(store)):
    print(f"level {k}: {shape} voxels of {size.tolist()} µm")
flags = ["--brainglobe-dir", str(atlases)]
assert main(["register", str(store), "--atlas", "allen_mouse_100um", "--method", "affine",
             "--no-report", "--quiet", "--out", str(out / "session"), *flags]) == 0  # fmt: skip
code = main(["apply", str(out / "session"), str(store), "--to", "atlas",
             "--out", str(out / "in_atlas.ome.zarr"), *flags])  # fmt: skip
print(omezarr.levels(out / "in_atlas.ome.zarr")[0])
sys.exit(code)
