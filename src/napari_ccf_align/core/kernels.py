"""Compiling the numba kernels off the GUI thread, once per process.

numba compiles a kernel on its first call (about 1 s per kernel and data type on a
fresh install) and loads it from its on-disk cache afterwards (``cache=True``,
about 0.3 s). :func:`warm_up_in_background` does either on a daemon thread as soon
as a widget is built, so the first preview, crop or result finds the kernels ready
and the GUI thread never compiles.
"""

from __future__ import annotations

import threading

import numpy as np

from . import rows, sampling

_lock = threading.Lock()
_thread: threading.Thread | None = None
ready = threading.Event()


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel the previews and results use."""
    sampling.warm_up((np.uint16, np.float32, np.uint8))
    rows.spans_mask((1, 1, 2), np.zeros((1, 1), np.int64), np.ones((1, 1), np.int64))
    ready.set()


def warm_up_in_background() -> threading.Thread:
    """Start :func:`warm_up` on a daemon thread (only the first call starts one)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=warm_up, name="ccf-align-numba-warm-up", daemon=True)
            _thread.start()
        return _thread
