"""The small progress protocol shared by downloads and engines, and cancellation.

Long work takes ``on_progress(event)`` and a :class:`CancelToken`. It never
touches Qt: widgets forward events to the GUI thread through worker signals.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from napari_ccf_align.core.errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """One step of long work.

    Parameters
    ----------
    stage : str
        What is happening ("download", "register", "warp", ...).
    done, total : float
        Progress so far and its end, in the stage's unit (bytes, iterations);
        ``total`` is 0 when unknown.
    message : str
        One line for a status bar.
    level : int or None
        Resolution level of a registration (0 = coarsest).
    iteration : int or None
        Optimiser iteration within the level.
    metric : float or None
        Metric value at this iteration.
    elapsed_s : float
        Seconds since the work started.
    """

    stage: str
    done: float = 0.0
    total: float = 0.0
    message: str = ""
    level: int | None = None
    iteration: int | None = None
    metric: float | None = None
    elapsed_s: float = 0.0

    @property
    def fraction(self) -> float | None:
        """``done / total`` in [0, 1], or None when the total is unknown."""
        return min(1.0, self.done / self.total) if self.total > 0 else None


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class TracePoint:
    """The metric at one optimiser iteration of an engine.

    Parameters
    ----------
    level : int
        Resolution level (0 = coarsest).
    iteration : int
        Iteration within the level.
    metric : float
        The engine's metric value (SimpleITK: minimised; DIPY SyN: energy).
    elapsed_s : float
        Seconds since the run started.
    stage : str
        The engine stage that produced it ("rigid", "affine", "syn", ...).
    """

    level: int
    iteration: int
    metric: float
    elapsed_s: float
    stage: str = ""

    @classmethod
    def of(cls, event: ProgressEvent) -> TracePoint | None:
        """The trace point an iteration event carries (None when it carries no metric)."""
        if event.metric is None or event.level is None:
            return None
        return cls(event.level, event.iteration or 0, event.metric, event.elapsed_s, event.stage)


def ignore_progress(event: ProgressEvent) -> None:
    """A progress callback that does nothing."""


class CancelToken:
    """A thread-safe flag that long work checks between steps.

    Examples
    --------
    >>> token = CancelToken()
    >>> token.cancel()
    >>> token.cancelled
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the work to stop as soon as it can."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def raise_if_cancelled(self, what: str = "The work") -> None:
        """Raise :class:`Cancelled` if cancellation was asked for."""
        if self._event.is_set():
            raise Cancelled(f"{what} was cancelled; nothing was changed.")


def level_progress(trace: Sequence[TracePoint]) -> list[float]:
    """Each point's share of its level's improvement so far, for plotting levels side by side.

    Engines minimise their metric (SimpleITK reports mutual information as a
    negative number), and each level smooths and shrinks the images differently,
    so raw values of different levels are not comparable. Here every level runs
    from 0 at its first iteration to 1 at its lowest value; a value worse than
    the level's start is negative.

    Examples
    --------
    >>> pts = [TracePoint(0, i, m, 0.0) for i, m in enumerate([-0.2, -0.5, -0.6])]
    >>> pts += [TracePoint(1, i, m, 0.0) for i, m in enumerate([-0.3, -0.25, -0.4])]
    >>> [round(v, 2) for v in level_progress(pts)]
    [0.0, 0.75, 1.0, 0.0, -0.5, 1.0]
    """
    out: list[float] = []
    start = 0
    for end in range(1, len(trace) + 1):
        if end < len(trace) and same_level(trace[end], trace[start]):
            continue
        values = [p.metric for p in trace[start:end]]
        first, best = values[0], min(values)
        span = first - best
        out.extend((first - v) / span if span > 0 else 0.0 for v in values)
        start = end
    return out


def same_level(a: TracePoint, b: TracePoint) -> bool:
    """Whether two points belong to one level of one stage (a new stage starts at level 0)."""
    return a.level == b.level and a.stage == b.stage
