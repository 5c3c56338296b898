"""Register to a BrainGlobe atlas by name, offline.

A BrainGlobe-format atlas folder is made first from the Allen 100 µm files when
``$CCF_ALIGN_SHARED_DATA`` (or ``../shared/data``) has them, else from the phantom; with
network and brainglobe-atlasapi, skip that step and give any BrainGlobe atlas name
(BrainGlobe downloads it once).

Run: ``.venv/bin/python examples/brainglobe_atlas.py [OUTPUT_FOLDER]``
"""

import sys
import tempfile
from pathlib import Path

from _example_atlas import example_atlas, simulated_sample
from napari_ccf_align.cli import main
from napari_ccf_align.core.testing import brainglobe_folder

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ccf-align-bg-"))
atlases = out / "brainglobe"
brainglobe_folder.write_brainglobe_atlas(atlases, "allen_mouse_100um", example_atlas())
sample = simulated_sample(out)

# the same as: napari-ccf-align register brain.nii.gz --atlas allen_mouse_100um ...
code = main(["register", str(sample), "--atlas", "allen_mouse_100um", "--brainglobe-dir",
             str(atlases), "--method", "affine", "--no-report", "--quiet",
             "--out", str(out / "session")])  # fmt: skip
print((out / "session" / "volumes.csv").read_text().splitlines()[1])
sys.exit(code)
