"""The QC report: a PNG sheet and an HTML page with the same picture and numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from napari_ccf_align.core import align
from napari_ccf_align.core.errors import CcfAlignError
from napari_ccf_align.core.register import pipeline, syn
from napari_ccf_align.core.results import qc, report
from napari_ccf_align.core.testing import phantom


@pytest.fixture(scope="module")
def run(template_100):
    sim = phantom.simulate_brain(template_100)
    state = align.centre_on_atlas(align.AlignmentState(), sim.volume, template_100)
    result = pipeline.run(
        template_100, sim.volume, "rigid+syn", state,
        syn_settings=syn.SynSettings(level_iters=(5, 3), working_resolution_um=200),
    )  # fmt: skip
    labels = template_100.with_data(np.digitize(template_100.data, [20, 60, 120]))
    return result, template_100, sim.volume, labels


def test_report_sheet_and_page(run, tmp_path, screenshot_dir):
    result, fixed, moving, labels = run
    figures = {"hand alignment": {report.NCC: 0.3, report.MI: 0.4}}
    figures[f"after {result.method}"] = report.similarity(fixed, result.warp(fixed, moving))
    png, page = report.write(
        tmp_path / "qc", result, fixed, moving, labels, figures, seconds=12.3,
        settings={"syn": result.settings.to_dict()},
    )  # fmt: skip
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    text = page.read_text(encoding="utf-8")
    # more than the picture: the method and whole time, each stage, the figures, the settings
    assert "Method: rigid+syn; 12.3 s in all" in text
    stages = re.search(r"<h2>Stages</h2>\s*<table.*?</table>", text, re.S).group(0)
    assert stages.count("<tr>") == 3 and "<td>rigid</td>" in stages and "<td>SyN</td>" in stages
    table = re.search(r"<h2>Similarity to the atlas</h2>\s*<table.*?</table>", text, re.S).group(0)
    assert table.count("<tr>") == 3  # header + NCC + MI
    assert "&quot;level_iters&quot;: [5, 3]" in text
    assert f"{figures[f'after {result.method}'][report.NCC]:.4f}" in text
    embedded = re.search(r'src="data:image/png;base64,([^"]+)"', text).group(1)
    import base64

    assert base64.b64decode(embedded) == data  # the page shows the same picture
    assert sorted(p.name for p in (tmp_path / "qc").iterdir()) == [
        "qc_report.html",
        "qc_report.png",
    ]
    (screenshot_dir / "qc_report.png").write_bytes(data)


def test_report_refuses_a_file_as_folder(run, tmp_path):
    result, fixed, moving, _ = run
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CcfAlignError, match="is a file, not a folder"):
        report.write(blocker, result, fixed, moving)


def _labelled_ball():
    """A smooth 'brain' (a blob) with two major regions: Isocortex above, cerebellum below."""
    from napari_ccf_align.core.io.atlas import StructureTable
    from napari_ccf_align.core.volume import Volume

    z, y, x = np.mgrid[:24, :24, :24] - 11.5
    blob = np.exp(-(x**2 + y**2 + z**2) / 60.0).astype(np.float32)
    inside = x**2 + y**2 + z**2 < 10**2
    labels = np.where(inside, np.where(z < 0, 315, 512), 0).astype(np.uint32)
    table = StructureTable.from_graph({"id": 997, "acronym": "root", "name": "root", "children": [
        {"id": 315, "acronym": "Isocortex", "name": "Isocortex", "children": []},
        {"id": 512, "acronym": "CB", "name": "Cerebellum", "children": []}]})  # fmt: skip
    grid = Volume.from_array(blob, 0.1, "RAS", name="atlas")
    return grid, grid.with_data(labels), table


def test_figures_are_right_on_constructed_cases():
    atlas_image, labels, table = _labelled_ball()
    same = report.similarity(atlas_image, atlas_image, labels, labels, table)
    assert same[report.NCC] == pytest.approx(1.0) and same[report.DICE] == pytest.approx(1.0)
    assert same[report.MI] > 0.5
    # the sample's labels one slab down: the expected Dice of each region, worked out here
    moved = labels.with_data(np.roll(labels.data, 1, axis=0))
    shifted = report.similarity(atlas_image, atlas_image, labels, moved, table)
    expected = np.mean(
        [
            2
            * np.sum((labels.data == k) & (moved.data == k))
            / (np.sum(labels.data == k) + np.sum(moved.data == k))
            for k in (315, 512)
        ]
    )
    assert shifted[report.DICE] == pytest.approx(expected) and 0.8 < expected < 1.0
    # a saturated spot (a bubble, a bright vessel) does not make a perfect match read badly
    spot = atlas_image.data.copy()
    spot[11, 11, 11] = 1e6
    bright = report.similarity(atlas_image, atlas_image.with_data(spot), labels)
    assert bright[report.NCC] > 0.99
    assert qc.ncc(atlas_image.data, spot, labels.data > 0) < 0.2  # unclipped, it would
    assert report.DICE not in bright  # no labels on the sample's side: no Dice
