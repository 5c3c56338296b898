"""Bad input gets one sentence: the catalogue of bad inputs, and a walk of every public function."""

from __future__ import annotations

import re

import numpy as np
import pytest

from napari_ccf_align.core import (
    alignment,
    atlas,
    checks,
    downsample,
    io,
    phantom,
    pipeline,
    prepare,
    projections,
    qc,
    report,
    rigid,
    rows,
    sampling,
    space,
    syn,
    volume,
)
from napari_ccf_align.core.errors import CcfAlignError

from .bad_inputs import CASES, table_rows
from .conftest import REPO

MODULES = (
    alignment, atlas, checks, downsample, io, phantom, pipeline, prepare, projections, qc, report,
    rigid, rows, sampling, space, syn, volume,
)  # fmt: skip


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


def _public_functions():
    for module in MODULES:
        for name, func in vars(module).items():
            if getattr(func, "__ccf_align_public__", False) and func.__module__ == module.__name__:
                yield f"{module.__name__.rsplit('.', 1)[-1]}.{name}", func


WRONG = [(), (None,), ("nonsense",), (object(),), (np.zeros(()),), ([1, "a"],), (None, None, None)]


@pytest.mark.parametrize(
    ("name", "func"), list(_public_functions()), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_public_function_raises_only_our_errors_for_wrong_kinds(name, func):
    for args in WRONG:
        try:
            out = func(*args)
            if hasattr(out, "__enter__"):  # a context manager: enter it too
                with out:
                    pass
        except CcfAlignError:
            pass
        except Exception as exc:  # the failure names the function, the arguments and the error
            pytest.fail(f"{name}{args!r} raised {type(exc).__name__}: {exc}")
