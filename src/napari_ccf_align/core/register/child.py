"""Running an engine in a child process, with the same progress and cancel protocol.

DIPY's SyN loop is Python and holds the GIL between its kernels, so on a worker
thread it takes turns with the GUI thread. In a child process it holds its own
interpreter's lock: the GUI thread never waits for it. :func:`call` runs an engine
function there (Python in isolated mode running this module, :func:`child_command`:
nothing of the calling program is imported again, unlike ``multiprocessing``'s spawn,
and nothing from the working folder), relays its
:class:`ProgressEvent` objects to ``on_progress`` in the calling process, and
passes a Cancel on within ``_POLL_S`` seconds.

The channel: the parent writes the pickled call to the child's stdin, then one byte
to cancel; the child writes length-prefixed pickled ``(kind, payload)`` frames
(``progress``, ``error``, ``done``) to its stdout. Both ends are this package.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import subprocess
import sys
import threading

from napari_ccf_align.core.errors import RegistrationError
from napari_ccf_align.core.progress import CancelToken, ProgressCallback, ignore_progress

_POLL_S = 0.05
_HEADER = 8  # bytes of a frame's length


def _write_frame(stream, kind: str, payload) -> None:
    data = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(_HEADER, "little") + data)
    stream.flush()


def _read_frames(stream, out: queue.Queue) -> None:
    while True:
        header = stream.read(_HEADER)
        if len(header) < _HEADER:
            out.put(("eof", None))
            return
        size = int.from_bytes(header, "little")
        out.put(pickle.loads(stream.read(size)))


def call(
    target: str,
    *args,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    **kwargs,
):
    """``target(*args, **kwargs, on_progress=..., cancel=...)`` in a child process.

    Parameters
    ----------
    target : str
        Dotted name of a module-level engine function of this package, e.g.
        ``"napari_ccf_align.core.register.syn.register"``.
    on_progress : callable
        Called in this process with each event the engine reports.
    cancel : CancelToken, optional
        Setting it cancels the child's token; the child raises :class:`Cancelled`.

    Raises
    ------
    Whatever the engine raised (re-raised here), or :class:`RegistrationError` if
    the child process died without a result (e.g. killed for lack of memory).
    """
    child = subprocess.Popen(
        child_command(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    frames: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_frames, args=(child.stdout, frames), daemon=True)
    reader.start()
    cancelled = False
    try:
        child.stdin.write(pickle.dumps((target, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL))
        child.stdin.flush()
        while True:
            if cancel is not None and cancel.cancelled and not cancelled:
                cancelled = True
                child.stdin.write(b"x")
                child.stdin.flush()
            try:
                kind, payload = frames.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if kind == "progress":
                on_progress(payload)
            elif kind == "error":
                raise payload
            elif kind == "done":
                return payload
            else:
                raise RegistrationError(
                    f"The engine's process ended without a result (exit code {child.wait()}): if "
                    "it ran out of memory, choose a coarser working resolution; else run again."
                )
    except BrokenPipeError:
        raise RegistrationError(
            "The engine's process could not be started or ended early: check the installation "
            "(python -m napari_ccf_align.core.register.child), then run again."
        ) from None
    finally:
        try:
            child.stdin.close()
        except OSError:
            pass
        # the child has said its last word: reap it off this thread, so a Cancel or an error
        # reaches the caller without waiting for the child's interpreter to shut down
        threading.Thread(target=_reap, args=(child,), daemon=True).start()


def _reap(child: subprocess.Popen) -> None:
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def child_command() -> list[str]:
    """The child's command line: Python in isolated mode, with this process's import path.

    ``python -m`` would put the working folder first on ``sys.path``, so a ``queue.py``
    (or any module name we import) in the folder napari was started from would run in
    the child. ``-I`` adds no folder, reads no ``PYTHON*`` variable and no user site; the
    path this process imports from is handed over explicitly, less the working folder.
    """
    here = os.path.abspath(os.getcwd())
    path = [p for p in sys.path if p and os.path.abspath(p) != here]
    code = (
        f"import sys; sys.path[:] = {path!r}; import runpy; "
        f"runpy.run_module({__name__!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-I", "-c", code]


def _main() -> None:
    """The child: read the call, run it, write progress and the outcome as frames."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # anything printed must not corrupt the frames
    target, args, kwargs = pickle.load(stdin)
    token = CancelToken()

    def watch() -> None:
        stdin.read(1)  # a byte (Cancel) or the end of input (the parent is gone)
        token.cancel()

    threading.Thread(target=watch, daemon=True).start()
    module, _, name = target.rpartition(".")
    if not module.startswith("napari_ccf_align."):  # only this package's engines run here
        _write_frame(stdout, "error", RegistrationError(f"{target} is not an engine of ours."))
        return
    func = getattr(importlib.import_module(module), name)
    try:
        result = func(
            *args,
            **kwargs,
            on_progress=lambda event: _write_frame(stdout, "progress", event),
            cancel=token,
        )
    except BaseException as exc:  # handed to the parent, which raises it there
        _write_frame(stdout, "error", exc)
    else:
        _write_frame(stdout, "done", result)


if __name__ == "__main__":
    _main()
