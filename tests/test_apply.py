"""Applying a result to points: CSV in and out."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_ccf_align.core.results import apply
from napari_ccf_align.core.volume import Volume


def test_cells_that_would_run_as_formulas_are_written_as_text(tmp_path):
    src = tmp_path / "cells.csv"
    src.write_text(
        'name,axis-0,axis-1,axis-2\n=HYPERLINK("http://x"),1,2,3\n@SUM(A1),-1.5,2,3\n',
        encoding="utf-8",
    )
    sample = Volume.from_array(np.zeros((8, 8, 8), np.uint8), 0.1, "RAS", name="s")
    table = apply.read_points_csv(src, sample, "index")
    np.testing.assert_allclose(table.world_ras[1], [-0.15, 0.2, 0.3])  # -1.5 stays a number
    out = apply.write_points_csv(tmp_path / "out.csv", table, {"note": ["+danger", "-2.5"]})
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[1][0] == '\'=HYPERLINK("http://x")' and rows[2][0] == "'@SUM(A1)"
    assert rows[1][-1] == "'+danger" and rows[2][-1] == "-2.5" and rows[2][1] == "-1.5"


def _files(tmp_path):
    session = tmp_path / "session"
    session.mkdir()
    (session / "warped.nii.gz").write_bytes(b"the session's own file")
    image = tmp_path / "brain.nii.gz"
    image.write_bytes(b"the user's input")
    points = tmp_path / "cells.csv"
    points.write_text("axis-0,axis-1,axis-2\n1,2,3\n")
    return session, image, points


@pytest.mark.parametrize(
    ("out", "source", "says"),
    [
        ("brain.nii.gz", "brain.nii.gz", "is the input itself"),
        ("session/warped.nii.gz", "brain.nii.gz", "inside the session folder"),
        ("session/new.nii.gz", "annotation", "inside the session folder"),
        ("cells_out.nii.gz", "cells.csv", "give a .csv file"),
        ("brain_out.csv", "brain.nii.gz", "give an image file"),
        ("cells.csv", "brain.nii.gz", "give an image file"),
    ],
)
def test_an_apply_that_would_lose_data_is_refused_before_any_work(tmp_path, out, source, says):
    from napari_ccf_align.core.errors import CcfAlignError
    from napari_ccf_align.core.runs import applying

    session, image, points = _files(tmp_path)
    with pytest.raises(CcfAlignError, match=says):
        applying.check_target(
            tmp_path / out, tmp_path / source if source != "annotation" else source, session
        )
    assert image.read_bytes() == b"the user's input"
    assert (session / "warped.nii.gz").read_bytes() == b"the session's own file"


def test_an_existing_output_needs_force_and_the_cli_says_so(tmp_path, capsys):
    from napari_ccf_align import cli
    from napari_ccf_align.core.runs import applying

    session, image, _ = _files(tmp_path)
    old = tmp_path / "old.nii.gz"
    old.write_bytes(b"an earlier output")
    assert cli.main(["apply", str(session), str(image), "--out", str(old)]) == 2
    assert "exists: give another file name, or --force" in capsys.readouterr().err
    assert applying.check_target(old, image, session, force=True) == old
    assert cli.main(["apply", str(session), str(image), "--out", str(image), "--force"]) == 2
    assert "is the input itself" in capsys.readouterr().err  # --force never overwrites an input
    assert image.read_bytes() == b"the user's input" and old.read_bytes() == b"an earlier output"


def test_points_are_read_by_their_header_and_what_cannot_be_placed_is_refused(tmp_path):
    from napari_ccf_align.core.errors import UnreadableFileError

    sample = Volume.from_array(np.zeros((8, 9, 10), np.uint8), (0.1, 0.2, 0.3), "RAS", name="s")

    def read(text, frame="index"):
        path = tmp_path / "p.csv"
        path.write_text(text, encoding="utf-8")
        return apply.read_points_csv(path, sample, frame)

    # an id column first is not a coordinate (it used to be read as one)
    by_xyz = read("id,x,y,z\n7,1,2,3\n")
    np.testing.assert_allclose(by_xyz.world_ras[0], sample.index_to_world([3.0, 2.0, 1.0]))
    by_axis = read("axis-0,axis-1,axis-2,id\n3,2,1,7\n")
    np.testing.assert_allclose(by_axis.world_ras, by_xyz.world_ras)
    world = read("cell,r_mm,a_mm,s_mm\nc,1.5,-2,0.25\n", "world")
    np.testing.assert_allclose(world.world_ras[0], [1.5, -2.0, 0.25])
    with pytest.raises(
        UnreadableFileError, match=r"p.csv names no coordinate columns .* 'x, y, z'"
    ):
        read("id,a,b,c\n1,2,3,4\n")
    with pytest.raises(UnreadableFileError, match=r"p.csv row 3 has a coordinate that is not a"):
        read("x,y,z\n1,2,3\nnan,2,3\n")
