"""Bad input gets one sentence: the catalogue of bad inputs tried at the entry points."""

from __future__ import annotations

import re

import pytest

from napari_ccf_align.core.errors import CcfAlignError

from .bad_inputs import CASES, table_rows
from .conftest import REPO


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    # nothing here may reach the network or the user's cache
    monkeypatch.setenv("CCF_ALIGN_BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("CCF_ALIGN_STRUCTURES_URL", "http://127.0.0.1:9/graph.json")
    monkeypatch.setenv("CCF_ALIGN_CACHE", str(tmp_path / "cache"))


def _one_sentence(message: str) -> bool:
    """What is wrong and what to do: one line, a colon or semicolon between, a full stop."""
    return "\n" not in message and message.endswith((".", ".)")) and re.search(r"[:;]", message)


@pytest.mark.parametrize(("kind", "what", "call"), CASES, ids=[f"{k}: {w}" for k, w, _ in CASES])
def test_bad_input_is_one_sentence_of_our_own(kind, what, call, tmp_path):
    with pytest.raises(CcfAlignError) as info:
        call(tmp_path)
    assert _one_sentence(str(info.value)), str(info.value)


def test_the_catalogue_is_large_and_the_reliability_table_lists_it(tmp_path):
    assert len(CASES) >= 60
    assert len({k for k, _, _ in CASES}) >= 10  # by class
    doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
    for kind, what, cls, _ in table_rows(tmp_path):
        assert f"| {kind} | {what} | `{cls}` |" in doc, (
            f"re-run python -m tests.bad_inputs ({what})"
        )
