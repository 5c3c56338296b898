"""A bug of ours is not reported as the user's bad input: in the widgets and in the core."""

from __future__ import annotations

import pytest

from napari_ccf_align.core.errors import CcfAlignError, CropError


@pytest.mark.gui
def test_a_worker_bug_says_internal_error_and_reaches_napari_s_error_dialog(qtbot, monkeypatch):
    from napari.utils import notifications

    from napari_ccf_align.plugin.widgets import _worker

    received, said = [], []
    monkeypatch.setattr(
        notifications.notification_manager,
        "receive_error",
        lambda kind, exc, tb: received.append((kind, exc, tb)),
    )

    def buggy():
        return {}["missing key"]  # a KeyError inside our code

    worker = _worker.start(buggy, on_done=lambda r: None, on_error=lambda e: said.append(e))
    qtbot.waitUntil(lambda: bool(said), timeout=10_000)
    qtbot.waitUntil(lambda: not worker.is_running, timeout=10_000)
    (exc,) = said
    assert isinstance(exc, KeyError)
    sentence = _worker.error_sentence(exc)
    assert sentence.startswith("internal error: KeyError: 'missing key'")
    assert "not in your input" in sentence and "error dialog" in sentence
    assert received and received[0][1] is exc and received[0][2] is not None  # the traceback


@pytest.mark.gui
def test_bad_input_in_a_worker_is_its_sentence_and_not_a_bug_report(qtbot, monkeypatch):
    from napari.utils import notifications

    from napari_ccf_align.plugin.widgets import _worker

    received, said = [], []
    monkeypatch.setattr(
        notifications.notification_manager, "receive_error", lambda *a: received.append(a)
    )

    def refused():
        raise CropError("The crop is empty: give a box.")

    _worker.start(refused, on_done=lambda r: None, on_error=said.append)
    qtbot.waitUntil(lambda: bool(said), timeout=10_000)
    assert _worker.error_sentence(said[0]) == "The crop is empty: give a box."
    assert received == []


def test_core_functions_no_longer_disguise_a_wrong_argument_as_bad_input():
    # a programming error (a list where a Volume goes) stays a TypeError/AttributeError:
    # it is a bug of the caller, not a sentence for the user
    from napari_ccf_align.core import align

    with pytest.raises(AttributeError) as info:
        align.tissue_threshold([1, 2, 3])
    assert not isinstance(info.value, CcfAlignError)
