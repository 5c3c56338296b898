"""The command line: headless demo, atlas fetching, one sentence on bad input."""

from __future__ import annotations

import os

import numpy as np

from napari_ccf_align import cli
from napari_ccf_align.cli import demo, terminal
from napari_ccf_align.core import io
from napari_ccf_align.core.results import report
from napari_ccf_align.core.runs import session
from napari_ccf_align.core.volume import Volume


def test_headless_demo_runs_the_whole_pipeline_to_a_session_and_report(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert cli.main(["demo", "--headless", "--quiet", "--output", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "mean error over the brain" in out and "rigid+syn: " in out
    warped = io.read_volume(out_dir / "warped.nii.gz").reoriented("RAS")
    assert warped.shape == (114, 132, 80)
    np.testing.assert_allclose(warped.spacing, 0.1, atol=1e-6)
    s, _ = session.load(out_dir)
    assert s.method == "rigid+syn" and s.moving.embedded == "moving.nii.gz"
    ncc = [f[report.NCC] for f in s.figures.values()]
    assert ncc[-1] > ncc[0] + 0.2  # hand alignment -> rigid + SyN
    assert (out_dir / "qc_report.html").is_file() and (out_dir / "syn_warp.nii.gz").is_file()


def test_no_screen_falls_back_to_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(terminal.sys, "platform", "linux")
    assert not terminal.has_screen()
    monkeypatch.setenv("DISPLAY", ":99")
    assert terminal.has_screen()
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert not terminal.has_screen()


def test_bad_resolution_is_one_sentence_and_exit_2(capsys):
    assert cli.main(["fetch-atlas", "--resolution", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "napari-ccf-align: The Allen CCF is not published at 30 µm: choose 10, 25, 50 or 100 µm."
    )


def test_output_is_checked_before_the_work(tmp_path, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output folder should go")
    assert cli.main(["demo", "--headless", "--output", str(blocker)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"napari-ccf-align: {blocker} is a file, not a folder: give a folder name for the results."
    )
    assert "Headless demo" not in captured.out  # refused before any work
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # (root may write anyway)
        assert cli.main(["demo", "--headless", "--output", str(locked / "out")]) == 2
        assert "is not writable" in capsys.readouterr().err


def test_screenshot_into_a_missing_folder_creates_it(tmp_path):
    target = tmp_path / "new" / "folder" / "shot.png"
    demo._screenshot_folder(target)
    assert target.parent.is_dir()


def test_an_internal_error_says_it_is_one_exits_1_and_logs_the_traceback(
    monkeypatch, capsys, tmp_path
):
    from napari_ccf_align.core.io import atlas

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(atlas, "load_atlas", broken)  # a bug, not bad input
    monkeypatch.setattr(terminal, "_log_folders", lambda: [tmp_path / "logs"])
    assert cli.main(["fetch-atlas", "--resolution", "100"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("napari-ccf-align: internal error: ZeroDivisionError: division by zero")
    assert "not in your input" in err and "please report it" in err
    (log,) = (tmp_path / "logs").glob("crash-*.log")
    assert str(log) in err
    text = log.read_text()
    assert "Traceback" in text and "in broken" in text and "fetch-atlas" in text


def test_an_internal_error_of_a_core_function_is_not_called_bad_input(monkeypatch, capsys):
    # a TypeError deep in our code (here: numpy given a bad argument by us) is a bug:
    # exit 1, never the bad-input status 2 that would blame the user
    from napari_ccf_align.core.runs import session

    monkeypatch.setattr(session, "check_session_target", lambda out: len(None))
    monkeypatch.setattr(terminal, "_log_folders", lambda: [])
    assert cli.main(["demo", "--headless", "--quiet", "--output", "x"]) == 1
    err = capsys.readouterr().err
    assert "internal error: TypeError" in err and "with the command you ran" in err


def test_bad_flags_exit_2_with_usage(capsys):
    import pytest

    with pytest.raises(SystemExit) as info:
        cli.main(["fetch-atlas", "--resolution", "lots"])
    assert info.value.code == 2
    assert "'lots' is not a whole number" in capsys.readouterr().err


def test_help_shows_defaults_an_example_and_each_method_without_loading_an_engine():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from napari_ccf_align.cli import main\n"
        "try:\n    main(['register', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'numpy', 'numba', 'scipy', 'SimpleITK', 'dipy', 'napari', 'matplotlib'}\n"
        "print('LOADED', sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "LOADED []" in out
    assert "(default: 25)" in out and "(default: 100)" in out and "Example: napari-ccf-align" in out
    for method in ("rigid", "similarity", "affine", "rigid+syn", "affine+syn"):
        assert f"  {method} " in out
    version = subprocess.run(
        [sys.executable, "-m", "napari_ccf_align", "--version"], capture_output=True, text=True
    ).stdout
    assert version.strip().startswith("napari-ccf-align 0.")


def test_progress_is_a_line_per_stage_off_a_terminal_and_bars_on_one(capsys):
    from napari_ccf_align.core.progress import ProgressEvent

    log = terminal.TerminalProgress(terminal=False)
    for it in range(5):
        log(ProgressEvent("register", done=it, total=10, level=0, iteration=it, metric=-0.5))
    for it in range(3):
        log(ProgressEvent("syn", done=it, total=10, level=0, iteration=it, metric=0.1))
    log.close()
    err = capsys.readouterr().err.splitlines()
    assert err == ["napari-ccf-align: SimpleITK...", "napari-ccf-align: DIPY SyN..."]


def test_verbose_is_a_flag_and_quiet_is_the_default():
    from napari_ccf_align.cli.parser import build_parser

    assert build_parser().parse_args(["--verbose", "fetch-atlas"]).verbose
    assert not build_parser().parse_args(["fetch-atlas"]).verbose


def test_ctrl_c_at_any_moment_of_start_up_prints_one_line_not_a_traceback(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    sample = io.write_volume(
        Volume.from_array(np.ones((6, 6, 6), np.float32), 0.1, "RAS"), tmp_path / "s.nii.gz"
    )
    for delay in (0.15, 0.4, 0.8):  # imports, flag parsing, reading the sample
        proc = subprocess.Popen(
            [sys.executable, "-m", "napari_ccf_align", "register", str(sample),
             "--atlas-resolution", "100", "--out", str(tmp_path / "o"), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        if proc.returncode == 130:
            assert err.strip().endswith("interrupted; nothing half-written was kept.")
        assert not (tmp_path / "o").exists()


def test_a_labs_own_template_is_the_fixed_side_and_replay_and_apply_keep_it(
    tmp_path, template_100, capsys
):
    # the template as a bare TIFF in BrainGlobe 'asr' order (no header to trust), with labels;
    # offline: no Allen file is read
    import tifffile

    from .conftest import lightsheet_like

    own = template_100.reoriented("PIL")  # nibabel PIL = BrainGlobe asr
    labels = own.with_data(np.digitize(np.asarray(own.data), np.percentile(own.data, [50, 80])))
    tifffile.imwrite(tmp_path / "lab_template.tif", np.asarray(own.data))
    tifffile.imwrite(tmp_path / "lab_labels.tif", labels.data.astype(np.uint16))
    sample, _ = lightsheet_like(template_100)
    sample_file = io.write_volume(sample, tmp_path / "brain.nii.gz")
    own_flags = [
        "--atlas-file", str(tmp_path / "lab_template.tif"), "--atlas-orientation", "asr",
        "--style", "brainglobe", "--atlas-voxel-size", "100", "100", "100",
        "--atlas-labels", str(tmp_path / "lab_labels.tif"),
    ]  # fmt: skip
    fast = ["--iterations", "40", "--syn-iterations", "10,5", "--quiet", "--no-report"]
    assert cli.main(["register", str(sample_file), *own_flags, *fast, "--out", "s1"]) == 0
    s, _ = session.load(tmp_path / "s1")
    assert s.atlas.kind == "volume" and s.atlas.name == "lab_template"
    assert (tmp_path / "s1" / "fixed.nii.gz").is_file()
    assert (tmp_path / "s1" / "fixed_labels.nii.gz").is_file()
    ncc = [f[report.NCC] for f in s.figures.values()]
    assert ncc[-1] > 0.6 and ncc[-1] > ncc[0] + 0.2  # registered to that template
    # replay registers to the session's template, not to the Allen CCF
    assert (
        cli.main(["replay", "s1", str(sample_file), "--out", "s2", "--quiet", "--no-report"]) == 0
    )
    again, _ = session.load(tmp_path / "s2")
    assert again.atlas.kind == "volume" and again.atlas.shape == s.atlas.shape
    # the template's labels go onto the sample as the annotation does
    assert cli.main(["apply", "s1", "annotation", "--to", "sample", "--out", "ann.nii.gz"]) == 0
    applied = io.read_volume(tmp_path / "ann.nii.gz").data
    saved = io.read_volume(tmp_path / "s1" / "annotation_in_sample.nii.gz").data
    assert np.mean(applied == saved) > 0.9999  # nearest-neighbour ties after a file round trip
    assert set(np.unique(applied)) == {0, 1, 2}
    capsys.readouterr()
    # the labels flags without a template: one sentence, exit 2
    code = cli.main(["register", str(sample_file), "--atlas-labels", "x.tif", "--out", "s3"])
    assert code == 2 and "give the template file too" in capsys.readouterr().err
