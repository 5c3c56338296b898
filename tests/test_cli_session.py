"""``napari-ccf-align register / apply / replay / batch`` end to end, in subprocesses.

The atlas comes from a real HTTP server on 127.0.0.1 serving ../shared/data into a
fresh cache (these tests skip without it); the sample is an anisotropic uint16
volume in PIR file order.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_ccf_align.core import io
from napari_ccf_align.core.runs import session

from .conftest import lightsheet_like
from .http_mirror import build_mirror, serve

FAST = ["--iterations", "60", "--syn-resolution", "200", "--syn-iterations", "20,10"]


def cli(*args, check=True, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run ``napari-ccf-align`` in a subprocess, as a user does."""
    proc = subprocess.run(
        [sys.executable, "-m", "napari_ccf_align", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def mirror(shared_data, tmp_path_factory):
    root = build_mirror(shared_data, tmp_path_factory.mktemp("mirror"))
    with serve(root) as (url, _):
        yield url


@pytest.fixture(scope="module")
def run(mirror, template_100, tmp_path_factory):
    """A registered session made by ``napari-ccf-align register`` (rigid -> SyN)."""
    root = tmp_path_factory.mktemp("cli")
    sample, _ = lightsheet_like(template_100)
    sample_file = io.write_volume(sample, root / "sample.nii.gz")
    atlas_flags = ["--cache", root / "cache", "--base-url", mirror]
    proc = cli(
        "register", sample_file, "--atlas-resolution", "100", "--method", "rigid+syn",
        *FAST, "--out", root / "s1", "--quiet", *atlas_flags,
    )  # fmt: skip
    return root, sample_file, proc, atlas_flags


def test_register_prints_one_summary_line_and_writes_the_session(run):
    root, sample_file, proc, _ = run
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    assert lines[0].startswith("rigid+syn: ") and "final metric" in lines[0]
    assert "session in" in lines[0] and "NCC" in lines[0]
    s, _ = session.load(root / "s1")
    assert s.method == "rigid+syn" and s.atlas.kind == "allen" and s.atlas.resolution_um == 100
    assert s.moving.sha256 == io.sha256_of(sample_file)
    img = nib.load(root / "s1" / "warped.nii.gz")
    np.testing.assert_allclose(img.affine, np.diag([0.1, 0.1, 0.1, 1.0]), atol=1e-6)
    assert img.shape == (114, 132, 80)  # the 100 µm atlas grid, R, A, S
    assert (root / "s1" / "qc_report.html").is_file()
    # region volumes in the sample's space: every labelled voxel of the sample is counted once
    rows = {r["acronym"]: r for r in csv.DictReader((root / "s1" / "volumes.csv").open())}
    on_sample = np.asarray(nib.load(root / "s1" / "annotation_in_sample.nii.gz").dataobj)
    voxel_mm3 = float(
        np.prod(nib.load(root / "s1" / "annotation_in_sample.nii.gz").header.get_zooms())
    )
    assert int(rows["root"]["total_voxels"]) == np.count_nonzero(on_sample)
    assert float(rows["root"]["total_volume_mm3"]) == pytest.approx(
        np.count_nonzero(on_sample) * voxel_mm3, rel=1e-5
    )
    iso = rows["Isocortex"]
    assert int(iso["left_voxels"]) > 0 and int(iso["right_voxels"]) > 0
    assert 0.8 < int(iso["left_voxels"]) / int(iso["right_voxels"]) < 1.25  # a symmetric brain


def test_apply_puts_another_channel_in_atlas_space(run, tmp_path):
    root, sample_file, *_ = run
    cli("apply", root / "s1", sample_file, "--to", "atlas", "--out", tmp_path / "ch.nii.gz")
    a = nib.load(tmp_path / "ch.nii.gz")
    b = nib.load(root / "s1" / "warped.nii.gz")
    np.testing.assert_allclose(a.affine, b.affine)
    # the same image through the session read back: the matrix from rigid.tfm differs from
    # the in-memory one by ~1e-15, which may tip a uint16 rounding at exactly .5
    diff = np.abs(np.asarray(a.dataobj, float) - np.asarray(b.dataobj, float))
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-4


def test_apply_puts_the_annotation_on_the_sample_with_its_ids(run, tmp_path):
    root, sample_file, _, atlas_flags = run
    cli(
        "apply", root / "s1", "annotation", "--to", "sample", "--out", tmp_path / "a.nii.gz",
        *atlas_flags,
    )  # fmt: skip
    out = io.read_volume(tmp_path / "a.nii.gz")
    same = io.read_volume(root / "s1" / "annotation_in_sample.nii.gz")
    sample = io.read_volume(sample_file)
    np.testing.assert_array_equal(out.data, same.data)
    np.testing.assert_allclose(out.affine, sample.affine, atol=1e-6)
    assert out.data.dtype == np.uint32 and out.data.max() > 65_535  # Allen ids kept whole


def test_points_go_to_the_atlas_with_their_regions_and_come_back(run, tmp_path):
    root, sample_file, _, atlas_flags = run
    s, _ = session.load(root / "s1")
    sample = io.read_volume(sample_file)
    cells = np.array([[30, 20, 45], [20, 15, 30], [40, 25, 60]], float)  # file voxel indices
    src = tmp_path / "cells.csv"
    src.write_text(
        "cell,axis-0,axis-1,axis-2\n"
        + "".join(f"c{k},{a},{b},{c}\n" for k, (a, b, c) in enumerate(cells))
    )
    cli("apply", root / "s1", src, "--out", tmp_path / "cells_atlas.csv", *atlas_flags)
    rows = list(csv.DictReader((tmp_path / "cells_atlas.csv").open()))
    assert [r["cell"] for r in rows] == ["c0", "c1", "c2"]
    got = np.array([[float(r[f"atlas_{a}_mm"]) for a in "ras"] for r in rows])
    expected = s.result.to_atlas(sample.index_to_world(cells))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert all(r["region_name"] and r["region_name"] != "outside the brain" for r in rows)
    # back to the sample: through the inverse field, the same voxels within a tenth of one
    back_src = tmp_path / "back.csv"
    back_src.write_text("r_mm,a_mm,s_mm\n" + "".join(f"{a},{b},{c}\n" for a, b, c in got))
    cli(
        "apply", root / "s1", back_src, "--to", "sample", "--points-frame", "world",
        "--out", tmp_path / "back_out.csv",
    )  # fmt: skip
    back = list(csv.DictReader((tmp_path / "back_out.csv").open()))
    idx = np.array([[float(r[f"sample_axis-{k}"]) for k in range(3)] for r in back])
    assert np.abs(idx - cells).max() < 0.1


def test_replay_on_the_same_brain_gives_the_same_transform(run):
    root, sample_file, *_ = run
    atlas_flags = run[3]
    cli(
        "replay",
        root / "s1",
        sample_file,
        "--out",
        root / "s2",
        "--quiet",
        "--no-report",
        *atlas_flags,
    )
    a, _ = session.load(root / "s1")
    b, _ = session.load(root / "s2")
    np.testing.assert_allclose(b.result.linear.matrix, a.result.linear.matrix, atol=1e-6)
    assert b.syn_settings == a.syn_settings and b.state == a.state
    assert np.abs(b.result.forward - a.result.forward).mean() < 0.01  # mm


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["register", "{missing}", "--out", "{tmp}/o"], "No file at"),
        (
            ["register", "{sample}", "--voxel-size", "0", "10", "10", "--orientation", "PIR",
             "--out", "{tmp}/o"],
            "every voxel size must be a positive number of µm",
        ),
        (["register", "{sample}", "--crop", "1-5", "0:10", "0:10", "--out", "{tmp}/o"], "START:STOP"),
        (["register", "{sample}", "--crop", "-5:10", "0:10", "0:10", "--out", "{tmp}/o"],
         "starts below voxel 0"),
        (["apply", "{session}", "{cut}", "--out", "{tmp}/c.nii.gz"], "does not cover the same space"),
        (["register", "{sample}", "--flip", "X", "--out", "{tmp}/o"], "--flip"),
        (["register", "{sample}", "--out", "{file}"], "is a file"),
        (["apply", "{tmp}/nothing", "{sample}", "--out", "{tmp}/x.nii.gz"], "No session folder"),
        (["apply", "{session}", "{sample}", "--out", "{tmp}"], "is a folder"),
        (["replay", "{tmp}", "{sample}", "--out", "{tmp}/r"], "not a session folder"),
    ],
)  # fmt: skip
def test_bad_input_is_one_sentence_and_exit_2(run, tmp_path, args, says):
    root, sample_file, *_ = run
    (tmp_path / "afile").write_text("x")
    (tmp_path / "stuff.txt").write_text("x")
    values = {
        "missing": tmp_path / "missing.nii.gz",
        "tmp": tmp_path,
        "sample": sample_file,
        "file": tmp_path / "afile",
        "session": root / "s1",
        "cut": _cut_sample(sample_file, tmp_path / "cut.nii.gz"),
    }
    proc = cli(*[a.format(**values) for a in args], check=False)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("napari-ccf-align: ") and says in err
    assert "Traceback" not in err and err.count("\n") == 0


def test_a_seeded_session_replays_bit_identically(run, tmp_path):
    # --seed sums the metric on one thread: the replay on the same brain repeats every bit
    # (the default, on every core, differs in the last digits)
    root, sample_file, _, atlas_flags = run
    first, again = tmp_path / "seeded", tmp_path / "replayed"
    cli(
        "register", sample_file, "--atlas-resolution", "100", "--method", "rigid+syn", *FAST,
        "--seed", "3", "--out", first, "--quiet", "--no-report", *atlas_flags,
    )  # fmt: skip
    cli("replay", first, sample_file, "--out", again, "--quiet", "--no-report", *atlas_flags)
    a, _ = session.load(first)
    b, _ = session.load(again)
    assert a.rigid_settings.seed == 3 and a.rigid_settings.threads == 1
    assert np.array_equal(a.result.linear.matrix, b.result.linear.matrix)
    assert np.array_equal(a.result.forward, b.result.forward)
    assert (first / "rigid.tfm").read_bytes() == (again / "rigid.tfm").read_bytes()


def test_points_whose_region_names_cannot_load_are_refused_unless_asked(run, tmp_path):
    # an atlas cache that cannot be filled: no table quietly missing its region columns
    root, *_ = run
    points = tmp_path / "cells.csv"
    points.write_text("x,y,z\n10,10,10\n")
    offline = ["--cache", tmp_path / "empty", "--base-url", "http://127.0.0.1:9/"]
    out = tmp_path / "cells_atlas.csv"
    proc = cli("apply", root / "s1", points, "--out", out, *offline, check=False)
    assert proc.returncode == 2 and "--no-regions" in proc.stderr and not out.exists()
    cli("apply", root / "s1", points, "--out", out, "--no-regions", *offline)
    header = out.read_text().splitlines()[0]
    assert "ccf_ap_um" in header and "region_id" not in header


def _cut_sample(sample_file, path):
    import SimpleITK as sitk

    image = sitk.ReadImage(str(sample_file))
    sitk.WriteImage(image[:, : image.GetSize()[1] // 2, :], str(path))  # half the tissue
    return path


def test_a_bad_flag_is_refused_with_usage_and_exit_2(tmp_path):
    proc = cli("register", "x.nii.gz", "--voxel-size", "1", "2", check=False)
    assert proc.returncode == 2
    assert "--voxel-size: expected 3 arguments" in proc.stderr
    proc = cli("register", "x.nii.gz", "--method", "warp", "--out", tmp_path, check=False)
    assert proc.returncode == 2 and "invalid choice: 'warp'" in proc.stderr


def test_ctrl_c_stops_the_run_and_writes_nothing(run, tmp_path):
    root, sample_file, _, atlas_flags = run
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_ccf_align", "register", str(sample_file),
         "--atlas-resolution", "100", "--method", "affine+syn", "--out", str(out),
         *map(str, atlas_flags)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = ""
    deadline = time.time() + 120
    while "SimpleITK" not in seen and time.time() < deadline:  # the run has started
        seen += os.read(proc.stderr.fileno(), 4096).decode(errors="replace")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted; nothing half-written was kept" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_session_json_names_the_atlas_source_and_versions(run):
    root, *_ = run
    data = json.loads((root / "s1" / "session.json").read_text())
    assert "127.0.0.1" in data["atlas"]["source"]
    assert data["versions"]["napari-ccf-align"]
    assert Path(data["moving"]["path"]).name == "sample.nii.gz"
