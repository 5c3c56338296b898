"""Running core work on a napari worker thread, with progress crossing to the GUI by Qt signal."""

from __future__ import annotations

import time
from collections.abc import Callable

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, QTimer, Signal

from napari_ccf_align.core.errors import CcfAlignError, internal_error_sentence
from napari_ccf_align.core.progress import ProgressEvent


def error_sentence(exc: BaseException) -> str:
    """What the status line and notification say of a failure.

    Our own errors are one sentence about the input; anything else is a bug of ours
    and says so (its traceback goes to napari's error dialog, :func:`report_bug`).
    """
    if isinstance(exc, CcfAlignError):
        return str(exc)
    return internal_error_sentence(exc, "with the traceback from napari's error dialog")


def report_bug(exc: BaseException) -> None:
    """Hand an internal error to napari's notification manager, whose error dialog shows
    the traceback; our own errors (bad input, cancel) are not bugs and are not handed on."""
    if isinstance(exc, CcfAlignError):
        return
    from napari.utils.notifications import notification_manager

    notification_manager.receive_error(type(exc), exc, exc.__traceback__)


class ProgressRelay(QObject):
    """Carries :class:`ProgressEvent` objects from a worker thread to the GUI thread.

    ``emit_event`` may be called from any thread; ``event`` is delivered on the
    thread the relay lives on (the GUI thread), at most every ``min_interval_s``
    except for the last event of a level or stage.
    """

    event = Signal(object)

    def __init__(self, min_interval_s: float = 0.05, parent: QObject | None = None):
        super().__init__(parent)
        self.min_interval_s = min_interval_s
        self._last = 0.0

    def emit_event(self, event: ProgressEvent, force: bool = False) -> None:
        now = time.perf_counter()
        if force or event.stage == "notice" or now - self._last >= self.min_interval_s:
            self._last = now
            self.event.emit(event)


def start(
    func: Callable,
    *,
    on_done: Callable,
    on_error: Callable[[BaseException], None],
    on_finished: Callable[[], None] | None = None,
    on_yield: Callable | None = None,
    **kwargs,
):
    """Run ``func(**kwargs)`` on a napari worker thread; returns the started worker.

    ``on_done(result)``, ``on_error(exc)``, ``on_finished()`` and, for a generator
    ``func``, ``on_yield(value)`` run on the GUI thread. An error that is not a
    :class:`CcfAlignError` is a bug: after ``on_error`` it goes to napari's error dialog.
    """

    def errored(exc: BaseException) -> None:
        try:
            on_error(exc)
        finally:
            report_bug(exc)

    connect = {"returned": on_done, "errored": errored}
    if on_finished is not None:
        connect["finished"] = on_finished
    if on_yield is not None:
        connect["yielded"] = on_yield
    return create_worker(func, **kwargs, _connect=connect, _ignore_errors=True, _start_thread=True)


def in_turns(steps: list[Callable[[], object]], on_error: Callable[[BaseException], None]) -> None:
    """Run ``steps`` one per turn of the Qt event loop, the first now.

    Between two steps the GUI thread paints and answers the user, so a sequence of layer
    adds stalls it no longer than napari's own cost for the largest one. A step that
    raises ends the sequence: ``on_error(exc)``, and a bug goes on to napari's error dialog.
    """
    pending = list(steps)

    def run_next() -> None:
        if not pending:
            return
        step = pending.pop(0)
        try:
            step()
        except Exception as exc:  # the sequence stops; the user hears why
            try:
                on_error(exc)
            finally:
                report_bug(exc)
            return
        if pending:
            QTimer.singleShot(0, run_next)

    run_next()
