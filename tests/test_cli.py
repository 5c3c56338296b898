"""The command line: headless demo, atlas fetching, one sentence on bad input."""

from __future__ import annotations

import numpy as np

from napari_ccf_align import cli
from napari_ccf_align.core import io


def test_headless_demo_registers_and_writes_results(tmp_path, capsys):
    assert cli.main(["demo", "--headless", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "mean error over the brain" in out
    warped = io.read_volume(tmp_path / "registered.nii.gz")
    assert warped.shape == (114, 132, 80)
    np.testing.assert_allclose(warped.spacing, 0.1, atol=1e-6)
    rows = (tmp_path / "metric.csv").read_text().splitlines()
    assert rows[0] == "level,iteration,metric,elapsed_s" and len(rows) > 10


def test_no_screen_falls_back_to_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(cli.sys, "platform", "linux")
    assert not cli.has_screen()
    monkeypatch.setenv("DISPLAY", ":99")
    assert cli.has_screen()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not cli.has_screen()


def test_bad_resolution_is_one_sentence_and_exit_2(capsys):
    assert cli.main(["fetch-atlas", "--resolution", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "napari-ccf-align: The Allen CCF is not published at 30 µm: choose 10, 25, 50 or 100 µm."
    )
