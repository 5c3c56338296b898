"""Shared fixtures: the real Allen files in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

try:  # hypothesis keeps no example database in the working tree
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ccf-align", database=None)
    _hypothesis_settings.load_profile("ccf-align")
except ImportError:  # pragma: no cover
    pass
#: BrainGlobe's API writes its config file at first use: into a temporary folder, not $HOME.
os.environ.setdefault(
    "BRAINGLOBE_CONFIG_DIR", tempfile.mkdtemp(prefix="ccf-align-brainglobe-config-")
)
SHARED_DATA = Path(os.environ.get("CCF_ALIGN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder with the real Allen 100 µm template, annotation and structure graph."""
    if not (SHARED_DATA / "average_template_100.nrrd").is_file():
        pytest.skip(
            f"real Allen 100 µm files not found in {SHARED_DATA} (set CCF_ALIGN_SHARED_DATA to "
            "the folder holding average_template_100.nrrd to run this test)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def template_100():
    """The real Allen 100 µm template in RAS when ../shared/data has it, else the phantom."""
    from napari_ccf_align.core.io import atlas
    from napari_ccf_align.core.testing import phantom

    path = SHARED_DATA / "average_template_100.nrrd"
    if path.is_file():
        return atlas.read_allen_nrrd(path, 100)
    return phantom.brain_phantom(100)


#: Where the widget tests leave the screenshots a person looks at: outside the working tree.
SCREENSHOTS = Path(
    os.environ.get("CCF_ALIGN_SCREENSHOTS", Path(tempfile.gettempdir()) / "ccf-align-screenshots")
)


@pytest.fixture(autouse=True)
def _in_a_temporary_folder(tmp_path, monkeypatch):
    """Every test runs in its own temporary folder: nothing lands in the working tree."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def screenshot_dir() -> Path:
    """Folder for screenshots that a person looks at ($CCF_ALIGN_SCREENSHOTS, else a
    folder in the system's temporary directory)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def notifications(monkeypatch):
    """Collects the messages the widgets show with show_error / show_info."""
    seen: list[tuple[str, str]] = []
    for module in ("load", "align", "register"):
        mod = __import__(f"napari_ccf_align.plugin.widgets.{module}", fromlist=["x"])
        monkeypatch.setattr(mod, "show_error", lambda m: seen.append(("error", str(m))))
        monkeypatch.setattr(mod, "show_info", lambda m: seen.append(("info", str(m))))
    return seen


def lightsheet_like(template, spacing_mm=(0.2, 0.16, 0.125), code="PIR", offset_mm=(0, 0, 0)):
    """A real-looking sample: the simulated brain on an anisotropic grid in ``code`` order,
    as uint16 with a light-sheet-like range (up to ~10,000), placed ``offset_mm`` away.

    Returns ``(volume, sim)``; ``sim.truth`` still maps the sample onto the atlas when
    ``offset_mm`` is zero.
    """
    import numpy as np

    from napari_ccf_align.core import align, frames
    from napari_ccf_align.core.testing import phantom
    from napari_ccf_align.core.volume import Volume

    sim = phantom.simulate_brain(template)
    lo = sim.volume.index_to_world(np.zeros(3))
    hi = sim.volume.index_to_world(np.asarray(sim.volume.shape) - 1.0)
    box_lo, box_hi = np.minimum(lo, hi), np.maximum(lo, hi)
    code_axes = ["RAS".index(frames.world_axes_of(c)) for c in code]
    size = (box_hi - box_lo)[code_axes]
    shape = tuple(int(n) for n in np.floor(size / np.asarray(spacing_mm)) + 1)
    grid = Volume.from_array(np.zeros(shape, np.uint8), spacing_mm, code, "nibabel")
    corner = grid.index_to_world(np.zeros(3))  # put the grid's box on the brain's box
    far = grid.index_to_world(np.asarray(shape) - 1.0)
    start = np.minimum(corner, far)
    grid = Volume(grid.data, grid.affine, "grid", "RAS")
    grid = grid.transformed(_shift(box_lo - start))
    values = align.resample(grid, sim.volume, frames.RigidParams().sitk_transform()).data
    data = (values / max(float(values.max()), 1e-6) * 10_868).astype(np.uint16)
    volume = Volume(data, grid.affine, "light-sheet sample", "RAS", {"orientation": code})
    return volume.transformed(_shift(np.asarray(offset_mm, float)), name="light-sheet sample"), sim


def _shift(t):
    import numpy as np

    m = np.eye(4)
    m[:3, 3] = t
    return m


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 kB tmpfs (where this machine lets the tests mount one), else a skip."""
    import shutil
    import subprocess

    folder = tmp_path / "small_disk"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: the full-disk case is covered by the ENOSPC tests")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            "mounting a small tmpfs is not allowed here (needs root): the full-disk "
            "case is covered by the simulated ENOSPC tests"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)
