"""The built wheel carries a valid npe2 manifest that napari finds through the entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from npe2 import PluginManifest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
    )
    (path,) = out.glob("napari_ccf_align-*.whl")
    return path


def test_wheel_contains_the_top_level_manifest(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "napari_ccf_align/napari.yaml" in names
        packaged = z.read("napari_ccf_align/napari.yaml")
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "napari_ccf_align:napari.yaml" in z.read(entry_points).decode()
    assert packaged == (REPO / "napari.yaml").read_bytes()
    (tmp_path / "napari.yaml").write_bytes(packaged)
    manifest = PluginManifest.from_file(tmp_path / "napari.yaml")
    assert manifest.name == "napari-ccf-align"


def test_installed_manifest_validates_and_imports():
    manifest = PluginManifest.from_distribution("napari-ccf-align")
    manifest.validate_imports()
    ids = {c.id for c in manifest.contributions.commands}
    for widget in manifest.contributions.widgets:
        assert widget.command in ids
    # schema 0.2.0 is readable by npe2 >= 0.6; newer schema versions lock out older napari
    assert tuple(int(x) for x in manifest.schema_version.split(".")) <= (0, 2, 0)
    assert metadata.distribution("napari-ccf-align").entry_points.select(group="napari.manifest")
