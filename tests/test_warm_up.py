"""numba kernels compile off the GUI thread, before the first preview or crop needs them."""

from __future__ import annotations

import threading

import numpy as np

from napari_ccf_align.core import sampling
from napari_ccf_align.core.sampling import rows, trilinear, warm


def test_warm_up_runs_once_on_a_background_thread_and_compiles_every_kernel():
    thread = sampling.warm_up_in_background()
    assert thread is not threading.current_thread() and thread.daemon
    assert sampling.warm_up_in_background() is thread  # one warm-up per process
    thread.join(timeout=120)
    assert sampling.ready.is_set()
    assert len(rows._paint.signatures) >= 1
    compiled = {sig[0].dtype for sig in trilinear._linear_planes.signatures}
    assert {np.dtype(t) for t in (np.uint16, np.float32, np.uint8)} <= {
        np.dtype(str(d)) for d in compiled
    }


def test_the_align_widget_does_not_compile_on_the_gui_thread(make_napari_viewer, monkeypatch):
    from napari_ccf_align.plugin.widgets.align import AlignWidget

    called_on = []
    monkeypatch.setattr(warm, "warm_up_all", lambda: called_on.append(threading.current_thread()))
    monkeypatch.setattr(warm, "_thread", None)
    viewer = make_napari_viewer()
    AlignWidget(viewer)
    warm._thread.join(timeout=10)
    assert called_on and called_on[0] is not threading.main_thread()
