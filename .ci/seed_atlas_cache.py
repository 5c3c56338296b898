"""Seed the user's atlas cache from ../shared/data through the real download code.

Serves the shared Allen 100 µm files on 127.0.0.1 laid out like the Allen server
and runs ``napari-ccf-align fetch-atlas`` against it, so CI exercises pooch, the
hash checks and the RAS conversion, and later steps (sample data, demo) find the
atlas in the cache. Without ../shared/data it says so and does nothing.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "tests"))

from http_mirror import build_mirror, serve  # noqa: E402
from napari_ccf_align.cli import main  # noqa: E402

if not (SHARED / "average_template_100.nrrd").is_file():
    print(f"seed: {SHARED} has no Allen files; the atlas cache is not seeded.")
    sys.exit(0)
with tempfile.TemporaryDirectory() as tmp, serve(build_mirror(SHARED, Path(tmp))) as (url, _):
    sys.exit(main(["fetch-atlas", "--resolution", "100", "--base-url", url]))
