"""Live plot of the registration metric per iteration, level boundaries marked, best shown."""

from __future__ import annotations

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
    """

    def __init__(self, theme_id: str = "dark", interval_ms: int = 50):
        super().__init__(theme_id, width=4.0, height=2.4)
        self.setMinimumHeight(200)
        self.points: list[TracePoint] = []
        self.redraws = 0
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()
        self.ax = self.figure.add_subplot(111)
        self.clear()

    def clear(self, title: str = "metric") -> None:
        """Forget every point and show empty axes."""
        self.points = []
        self.title = title
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

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        ax = self.ax
        ax.clear()
        self.style_axes(ax)
        ax.set_xlabel("iteration (all levels)", fontsize=7)
        ax.set_ylabel(self.title, fontsize=7)
        if self.points:
            ys = [p.metric for p in self.points]
            ax.plot(range(len(ys)), ys, color=self.colors["accent"], lw=1.2)
            for i in range(1, len(self.points)):
                if self.points[i].level != self.points[i - 1].level:
                    ax.axvline(i - 0.5, color=self.colors["text"], ls="--", lw=0.8, alpha=0.6)
                    ax.text(
                        i,
                        max(ys),
                        f" level {self.points[i].level + 1}",
                        fontsize=6,
                        color=self.colors["text"],
                        va="top",
                    )
            b = self.best()
            ib = self.points.index(b)
            ax.plot([ib], [b.metric], "o", color="#ffcc00", ms=4)
            ax.set_title(
                f"best {b.metric:.5f} (level {b.level + 1}, iteration {b.iteration})", fontsize=7
            )
        self.draw_idle()

    def save_png(self, path: str | Path) -> Path:
        """Write the plot as a PNG (via a temporary file)."""
        self._redraw_if_dirty()
        with io.atomic_path(path) as tmp:
            self.figure.savefig(tmp, format="png", dpi=150, facecolor=self.figure.get_facecolor())
        return Path(path)

    def save_csv(self, path: str | Path) -> Path:
        """Write the points (level, iteration, metric, elapsed_s) as CSV."""
        return io.write_trace_csv(self.points, path)
