"""The examples in examples/ run as a user runs them (a fresh process), offline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import REPO, SHARED_DATA

EXAMPLES = REPO / "examples"


def _run(name: str, out) -> str:
    env = {**os.environ, "CCF_ALIGN_SHARED_DATA": str(SHARED_DATA)}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=out.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_own_template_example(tmp_path):
    out = _run("own_template.py", tmp_path / "own")
    assert "fixed.nii.gz" in out and "annotation_in_sample.nii.gz" in out


@pytest.mark.slow
def test_brainglobe_atlas_example(tmp_path):
    pytest.importorskip("brainglobe_atlasapi", reason="brainglobe-atlasapi is not installed")
    out = _run("brainglobe_atlas.py", tmp_path / "bg")
    assert out.splitlines()[-1].startswith("997,root,root,")  # volumes.csv's first region


@pytest.mark.slow
def test_export_brainreg_example(tmp_path):
    pytest.importorskip("brainglobe_atlasapi", reason="brainglobe-atlasapi is not installed")
    out = _run("export_brainreg.py", tmp_path / "br")
    assert "atlas allen_mouse_100um, orientation asl" in out and "deformation_field_2.tiff" in out


@pytest.mark.slow
def test_omezarr_example(tmp_path):
    pytest.importorskip("ome_zarr", reason="ome-zarr is not installed")
    out = _run("omezarr_roundtrip.py", tmp_path / "zarr")
    assert "level 2: " in out and "100., 100., 100." in out


@pytest.mark.slow
def test_register_simulated_brain_example(tmp_path):
    out = _run("register_simulated_brain.py", tmp_path / "sim")
    assert "truth:" in out and "iterations in" in out
