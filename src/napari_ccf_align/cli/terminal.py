"""The terminal side of the command line: progress bars, Ctrl-C as cancel, internal errors."""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import ClassVar

from napari_ccf_align.core import errors


def has_screen() -> bool:
    """Whether a window can be shown (an X or Wayland display on Linux)."""
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# --------------------------------------------------------------------------- progress in a terminal


class TerminalProgress:
    """tqdm bars (bytes for downloads, iterations for each registration stage) on a terminal;
    elsewhere (a log file, a pipe, a batch system) one line as each stage starts."""

    _STAGES: ClassVar[dict[str, str]] = {"register": "SimpleITK", "syn": "DIPY SyN"}

    def __init__(self, quiet: bool = False, terminal: bool | None = None) -> None:
        self._bar = None
        self._key = None
        self.quiet = quiet
        self.terminal = sys.stderr.isatty() if terminal is None else terminal

    def __call__(self, event) -> None:
        if event.stage == "notice":  # one line, even when quiet
            print(f"napari-ccf-align: {event.message}", file=sys.stderr)
            return
        if self.quiet:
            return
        from tqdm import tqdm

        if event.stage == "download":
            key, desc, kwargs = event.message, event.message, {"unit": "B", "unit_scale": True}
        elif event.stage in self._STAGES and event.total:
            key, desc, kwargs = event.stage, self._STAGES[event.stage], {"unit": "it"}
        else:
            return
        if not self.terminal:  # a line per stage, not a bar redrawn into a log
            if self._key != key:
                self._key = key
                print(f"napari-ccf-align: {desc}...", file=sys.stderr, flush=True)
            return
        if self._bar is None or self._key != key:
            if self._key in self._STAGES and self._bar.total:  # it ended (converged early)
                self._bar.n = self._bar.total
            self.close()
            self._bar = tqdm(total=event.total or None, desc=desc, leave=True, **kwargs)
            self._key = key
        self._bar.n = min(event.done, event.total or event.done)
        if event.metric is not None:
            self._bar.set_postfix_str(f"level {event.level + 1}, metric {event.metric:.5g}")
        self._bar.refresh()

    def close(self) -> None:
        if not self.terminal:
            self._key = None
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._key = None


@contextlib.contextmanager
def ctrl_c_cancels():
    """The first Ctrl-C cancels the run at its next iteration (nothing is written); a second
    one interrupts at once."""
    from napari_ccf_align.core.progress import CancelToken

    token = CancelToken()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print("\nStopping at the next iteration (Ctrl-C again to stop at once)...", file=sys.stderr)

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: no signal handling
        yield token
        return
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


def write_crash_log(exc: BaseException, argv: list[str] | None) -> Path | None:
    """Write the traceback of an internal error to a log file; its path, or None if none
    could be written anywhere."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = f"napari-ccf-align {stamp}\ncommand: {' '.join(argv or sys.argv)}\n\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    for folder in _log_folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _log_folders() -> list[Path]:
    folders = []
    try:
        import platformdirs

        folders.append(Path(platformdirs.user_log_dir("napari-ccf-align", appauthor=False)))
    except Exception:  # no home folder: the temporary folder still takes a log
        pass
    folders.append(Path(tempfile.gettempdir()))
    return folders


def internal_error_sentence(exc: BaseException, log: Path | None) -> str:
    """The one line an internal error gets: that it is ours, what it was, where the log is."""
    where = f"with the log at {log}" if log is not None else "with the command you ran"
    return errors.internal_error_sentence(exc, where)
