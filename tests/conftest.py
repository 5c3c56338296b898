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
    """A real-looking sample (see :func:`.core.testing.phantom.lightsheet_like`)."""
    from napari_ccf_align.core.testing import phantom

    return phantom.lightsheet_like(template, spacing_mm, code, offset_mm)


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
