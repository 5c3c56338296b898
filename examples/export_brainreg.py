"""Register a simulated brain to a BrainGlobe atlas, then export the session as brainreg's
folder for brainglobe-segmentation, brainmapper and brainglobe-napari-io.

Run: ``.venv/bin/python examples/export_brainreg.py [OUTPUT_FOLDER]``
"""

import json
import sys
import tempfile
from pathlib import Path

from _example_atlas import example_atlas, simulated_sample
from napari_ccf_align.cli import main
from napari_ccf_align.core.testing import brainglobe_folder

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ccf-align-br-"))
atlases = out / "brainglobe"
brainglobe_folder.write_brainglobe_atlas(atlases, "allen_mouse_100um", example_atlas())
flags = ["--brainglobe-dir", str(atlases)]
sample = simulated_sample(out)
assert main(["register", str(sample), "--atlas", "allen_mouse_100um", "--method", "affine",
             "--no-report", "--quiet", "--out", str(out / "session"), *flags]) == 0  # fmt: skip
# the same as: napari-ccf-align export-brainreg SESSION --out DIR
code = main(["export-brainreg", str(out / "session"), "--out", str(out / "brainreg"), *flags])
meta = json.loads((out / "brainreg" / "brainreg.json").read_text())
print(
    f"atlas {meta['atlas']}, orientation {meta['orientation']}, voxel sizes {meta['voxel_sizes']}"
)
print(sorted(p.name for p in (out / "brainreg").iterdir()))
sys.exit(code)
