"""Live plot of the registration metric per iteration, level boundaries marked, best shown."""

from __future__ import annotations

import math
from pathlib import Path

from qtpy.QtCore import QTimer

from ..core import io
from ..core.progress import ProgressEvent
from ..core.rigid import TracePoint
from ._mpl import ThemedCanvas


class MetricPlot(ThemedCanvas):
    """Metric value against iteration; redrawn at most every ``interval_ms``.

    Events are added from the GUI thread (they arrive by Qt signal from the
    worker); drawing happens on a timer so a fast optimiser cannot flood the GUI.
    Most updates only blit the line onto a saved background: the axes, ticks and
    level marks are re-rendered only when the data outgrow the axes limits (which
    grow in steps) or a new level starts, because a full Agg render of the figure
    takes tens of milliseconds on the GUI thread.
    """

    def __init__(self, theme_id: str = "dark", interval_ms: int = 50):
        super().__init__(theme_id, width=4.0, height=2.4)
        self.setMinimumHeight(200)
        self.points: list[TracePoint] = []
        self.redraws = 0
        self.full_redraws = 0
        self._dirty = False
        self._background = None
        self._limits: tuple[float, float, float, float] | None = None
        self._levels_drawn = 0
        self.ax = self.figure.add_subplot(111)
        (self.line,) = self.ax.plot([], [], color=self.colors["accent"], lw=1.2, animated=True)
        (self.marker,) = self.ax.plot([], [], "o", color="#ffcc00", ms=4, animated=True)
        self.best_text = self.ax.text(
            0.98,
            0.95,
            "",
            transform=self.ax.transAxes,
            fontsize=7,
            va="top",
            ha="right",
            color=self.colors["text"],
            animated=True,
        )
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()
        self.clear()

    def clear(self, title: str = "metric") -> None:
        """Forget every point and show empty axes."""
        self.points = []
        self.title = title
        self._limits = None
        self._dirty = True
        self._redraw_if_dirty()

    def add(self, event: ProgressEvent) -> None:
        """Add one iteration event (ignored if it carries no metric)."""
        if event.metric is None or event.level is None:
            return
        self.points.append(
            TracePoint(event.level, event.iteration or 0, event.metric, event.elapsed_s)
        )
        self._dirty = True

    def best(self) -> TracePoint | None:
        """The lowest metric so far (SimpleITK metrics are all minimised)."""
        return min(self.points, key=lambda p: p.metric) if self.points else None

    # ------------------------------------------------------------------ drawing

    def _level_starts(self) -> list[int]:
        return [
            i
            for i in range(1, len(self.points))
            if self.points[i].level != self.points[i - 1].level
        ]

    def _wanted_limits(self) -> tuple[float, float, float, float]:
        """Axes limits holding every point, grown in steps so they rarely change."""
        n = max(len(self.points), 1)
        x_max = float(2 ** math.ceil(math.log2(max(n, 16))))
        ys = [p.metric for p in self.points] or [0.0, 1.0]
        lo, hi = min(ys), max(ys)
        pad = max((hi - lo) * 0.25, abs(hi) * 0.05, 1e-6)
        return 0.0, x_max, lo - pad, hi + pad

    def _needs_full_redraw(self) -> bool:
        if self._background is None or self._limits is None:
            return True
        if len(self._level_starts()) != self._levels_drawn:
            return True
        _, x1, y0, y1 = self._limits
        ys = [p.metric for p in self.points]
        return len(self.points) > x1 or (ys and (min(ys) < y0 or max(ys) > y1))

    def _full_redraw(self) -> None:
        self.full_redraws += 1
        ax = self.ax
        for artist in list(ax.lines) + list(ax.texts):
            if artist not in (self.line, self.marker, self.best_text):
                artist.remove()
        self.style_axes(ax)
        ax.set_xlabel("iteration (all levels)", fontsize=7)
        ax.set_ylabel(self.title, fontsize=7)
        self._limits = self._wanted_limits()
        ax.set_xlim(*self._limits[:2])
        ax.set_ylim(*self._limits[2:])
        starts = self._level_starts()
        for i in starts:
            ax.axvline(i - 0.5, color=self.colors["text"], ls="--", lw=0.8, alpha=0.6)
            ax.text(
                i,
                self._limits[2],
                f" level {self.points[i].level + 1}",
                fontsize=6,
                color=self.colors["text"],
                va="bottom",
            )
        self._levels_drawn = len(starts)
        self.draw()
        self._background = self.copy_from_bbox(ax.bbox)

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        if self._needs_full_redraw():
            self._full_redraw()
        self.restore_region(self._background)
        ys = [p.metric for p in self.points]
        self.line.set_data(range(len(ys)), ys)
        b = self.best()
        if b is not None:
            self.marker.set_data([self.points.index(b)], [b.metric])
            self.best_text.set_text(
                f"best {b.metric:.5f} (level {b.level + 1}, iteration {b.iteration})"
            )
        else:
            self.marker.set_data([], [])
            self.best_text.set_text("")
        for artist in (self.line, self.marker, self.best_text):
            self.ax.draw_artist(artist)
        self.blit(self.ax.bbox)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._background = None  # the saved background no longer fits
        self._dirty = True

    # ------------------------------------------------------------------ saving

    def save_png(self, path: str | Path) -> Path:
        """Write the plot as a PNG (via a temporary file), line and best value included."""
        self._redraw_if_dirty()
        animated = (self.line, self.marker, self.best_text)
        for artist in animated:
            artist.set_animated(False)
        try:
            with io.atomic_path(path) as tmp:
                self.figure.savefig(
                    tmp, format="png", dpi=150, facecolor=self.figure.get_facecolor()
                )
        finally:
            for artist in animated:
                artist.set_animated(True)
            self._background = None
            self._dirty = True
        return Path(path)

    def save_csv(self, path: str | Path) -> Path:
        """Write the points (level, iteration, metric, elapsed_s) as CSV."""
        return io.write_trace_csv(self.points, path)
