"""Running core work on a napari worker thread, with progress crossing to the GUI by Qt signal."""

from __future__ import annotations

import time
from collections.abc import Callable

from napari.qt.threading import create_worker
from qtpy.QtCore import QObject, Signal

from ..core.progress import ProgressEvent


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
        if force or now - self._last >= self.min_interval_s:
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
    ``func``, ``on_yield(value)`` run on the GUI thread.
    """
    connect = {"returned": on_done, "errored": on_error}
    if on_finished is not None:
        connect["finished"] = on_finished
    if on_yield is not None:
        connect["yielded"] = on_yield
    return create_worker(func, **kwargs, _connect=connect, _ignore_errors=True, _start_thread=True)
