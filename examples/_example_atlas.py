"""What the examples share: a small atlas and a simulated sample, offline."""

import os
from pathlib import Path

from napari_ccf_align.core import io
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.core.testing.small_atlas import small_atlas

SHARED = Path(
    os.environ.get("CCF_ALIGN_SHARED_DATA", Path(__file__).parents[2] / "shared" / "data")
)


def example_atlas() -> atlas.Atlas:
    """The Allen 100 µm atlas from the shared files, else the phantom with two regions."""
    return small_atlas(SHARED)


def simulated_sample(out: Path, spacing_mm=(0.2, 0.16, 0.125)) -> Path:
    """The simulated brain (a known rotation of the template) as a uint16 PIR NIfTI file."""
    sample, _ = phantom.lightsheet_like(example_atlas().template, spacing_mm, "PIR")
    out.mkdir(parents=True, exist_ok=True)
    return io.write_volume(sample, out / "brain.nii.gz")
