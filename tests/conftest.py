"""Shared fixtures: the real Allen files in ../shared/data (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
    from napari_ccf_align.core import atlas, phantom

    path = SHARED_DATA / "average_template_100.nrrd"
    if path.is_file():
        return atlas.read_allen_nrrd(path, 100)
    return phantom.brain_phantom(100)


SCREENSHOTS = REPO / "screenshots"


@pytest.fixture
def screenshot_dir() -> Path:
    """Folder for screenshots that a person looks at (kept out of git)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def notifications(monkeypatch):
    """Collects the messages the widgets show with show_error / show_info."""
    seen: list[tuple[str, str]] = []
    for module in ("load", "align", "register"):
        mod = __import__(f"napari_ccf_align.widgets.{module}", fromlist=["x"])
        monkeypatch.setattr(mod, "show_error", lambda m: seen.append(("error", str(m))))
        monkeypatch.setattr(mod, "show_info", lambda m: seen.append(("info", str(m))))
    return seen
