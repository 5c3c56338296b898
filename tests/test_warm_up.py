"""numba kernels compile off the GUI thread, before the first preview or crop needs them."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

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


def test_numba_gets_a_temporary_cache_folder_when_nothing_else_is_writable(tmp_path, monkeypatch):
    """No writable install folder and no writable home: numba would fail at import with
    "no locator available"; a temporary folder is chosen instead, and only then."""
    from napari_ccf_align.core.sampling import cache

    monkeypatch.delenv(cache.ENV, raising=False)
    package, home = tmp_path / "site" / "pkg", tmp_path / "home" / ".cache" / "numba"
    package.mkdir(parents=True)
    assert cache.fallback_dir(package, home) is None  # both writable here

    writable = {package: False, tmp_path / "home": False}
    real_access = os.access

    def access(path, mode):
        for folder, allowed in writable.items():
            if Path(path) == folder or folder in Path(path).parents:
                return allowed
        return False if Path(path) in (tmp_path / "site", tmp_path) else real_access(path, mode)

    monkeypatch.setattr(cache.os, "access", access)
    folder = cache.fallback_dir(package, home)
    assert folder is not None and folder.parent == Path(tempfile.gettempdir())
    monkeypatch.setenv(cache.ENV, "/somewhere/chosen")
    assert cache.fallback_dir(package, home) is None  # the user's choice wins
