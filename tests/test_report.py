"""The QC report: a PNG sheet and an HTML page with the same picture and numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from napari_ccf_align.core import align
from napari_ccf_align.core.errors import CcfAlignError
from napari_ccf_align.core.register import pipeline, syn
from napari_ccf_align.core.results import report
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
    figures = {"hand alignment": {"NCC (brain)": 0.3, "Mattes MI": 0.4}}
    figures[f"after {result.method}"] = report.similarity(fixed, result.warp(fixed, moving))
    png, page = report.write(tmp_path / "qc", result, fixed, moving, labels, figures)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    text = page.read_text(encoding="utf-8")
    assert text.count("<tr>") == 3  # header + NCC + MI
    assert f"{figures[f'after {result.method}']['NCC (brain)']:.4f}" in text
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
