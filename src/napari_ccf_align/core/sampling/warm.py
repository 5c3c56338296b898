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

from napari_ccf_align.core.sampling.rows import spans_mask
from napari_ccf_align.core.sampling.trilinear import warm_up as _warm_up_linear

_lock = threading.Lock()
_thread: threading.Thread | None = None
ready = threading.Event()


def warm_up_all() -> None:
    """Compile (or load from numba's cache) every kernel the previews and results use."""
    _warm_up_linear((np.uint16, np.float32, np.uint8))
    spans_mask((1, 1, 2), np.zeros((1, 1), np.int64), np.ones((1, 1), np.int64))
    ready.set()


def warm_up_in_background() -> threading.Thread:
    """Start :func:`warm_up_all` on a daemon thread (only the first call starts one)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(
                target=warm_up_all, name="ccf-align-numba-warm-up", daemon=True
            )
            _thread.start()
        return _thread
