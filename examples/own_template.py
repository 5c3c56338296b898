"""Register to your own template (any 3D reference volume, with or without labels).

Run: ``.venv/bin/python examples/own_template.py [OUTPUT_FOLDER]``
"""

import sys
import tempfile
from pathlib import Path

from _example_atlas import example_atlas, simulated_sample
from napari_ccf_align.cli import main
from napari_ccf_align.core import io

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ccf-align-own-"))
out.mkdir(parents=True, exist_ok=True)
atlas = example_atlas()
template = io.write_volume(atlas.template, out / "lab_template.nii.gz")
labels = io.write_volume(atlas.annotation, out / "lab_labels.nii.gz")
sample = simulated_sample(out)
# the same as: napari-ccf-align register brain.nii.gz --atlas-file T --atlas-labels L ...
code = main(["register", str(sample), "--atlas-file", str(template), "--atlas-labels",
             str(labels), "--method", "affine", "--no-report", "--quiet",
             "--out", str(out / "session")])  # fmt: skip
print(sorted(p.name for p in (out / "session").iterdir()))
sys.exit(code)
