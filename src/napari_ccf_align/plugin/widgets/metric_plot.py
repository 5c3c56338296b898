"""Live plot of the registration metric per iteration, level boundaries marked, best shown."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.ticker import MaxNLocator
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from napari_ccf_align.core import io
from napari_ccf_align.core.progress import ProgressEvent, TracePoint, level_progress, same_level
from napari_ccf_align.plugin.widgets._mpl import ThemedCanvas

_MIN_X = 64  # iterations the x axis shows at first; doubled when outgrown
_Y_LIMITS = (-0.3, 1.12)  # level progress: 0 = the level's start, 1 = its best so far


class MetricPlot(QWidget):
    """Each level's progress against iteration, with the best raw value in text above it.

    Levels smooth and shrink the images differently, so their raw metric values are
    not comparable; the plot shows each level's share of its own improvement
    (:func:`.progress.level_progress`: 0 at the level's start, 1 at its best), on
    fixed y limits, with the levels side by side. The raw values are in the header
    and the CSV.

    Events are added from the GUI thread (they arrive by Qt signal from the
    worker); drawing happens on a timer, at most every ``interval_ms``, so a fast
    optimiser cannot flood the GUI. A full Agg render of the axes takes tens of
    milliseconds (mostly tick-label text), so it happens only when the data
    outgrow the axes limits, which grow geometrically (a handful of times per
    run). Every other update blits the line, the best point and the level
    boundaries onto the saved background, and the best value is Qt text.
    """

    def __init__(self, theme_id: str = "dark", interval_ms: int = 50):
        super().__init__()
        self.canvas = ThemedCanvas(theme_id, width=4.0, height=2.2)
        self.canvas.setFixedHeight(200)  # the layout never resizes it while a run redraws
        self.canvas.resized.connect(self._forget_background)
        self.header = QLabel("")
        self.header.setWordWrap(True)  # never wider than the dock; two lines at most
        self.header.setContentsMargins(9, 0, 0, 0)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.header.setFixedHeight(2 * self.header.fontMetrics().lineSpacing() + 4)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(self.canvas)

        self.points: list[TracePoint] = []
        self.title = "metric"
        #: Titles of stages other than the first (e.g. {"syn": "SyN energy"}), for the header.
        self.stage_titles: dict[str, str] = {"syn": "SyN energy (lower is better)"}
        self.redraws = 0
        self.full_redraws = 0
        self._dirty = False
        self._background = None
        self._limits: tuple[float, float, float, float] | None = None
        colors = self.canvas.colors
        self.ax = self.canvas.figure.add_subplot(111)
        self.ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        self.ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        (self.line,) = self.ax.plot([], [], color=colors["accent"], lw=1.2, animated=True)
        (self.marker,) = self.ax.plot([], [], "o", color="#ffcc00", ms=4, animated=True)
        self._level_lines: list = []
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._redraw_if_dirty)
        self._timer.start()
        self.clear()

    def set_theme(self, theme_id: str) -> None:
        """Follow napari's theme (dark, light, ...): colours, then a full redraw."""
        self.canvas.set_theme(theme_id)
        self.line.set_color(self.canvas.colors["accent"])
        for line in self._level_lines:
            line.set_color(self.canvas.colors["text"])
        self._forget_background()
        self._limits = None
        self._redraw_if_dirty()

    def clear(self, title: str = "metric") -> None:
        """Forget every point and show empty axes labelled ``title``."""
        self.points = []
        self.title = title
        self._limits = None
        self._dirty = True
        self._redraw_if_dirty()

    def add(self, event: ProgressEvent) -> None:
        """Add one iteration event (ignored if it carries no metric)."""
        point = TracePoint.of(event)
        if point is None:
            return
        self.points.append(point)
        self._dirty = True

    def best(self) -> TracePoint | None:
        """The lowest metric of the current level (SimpleITK metrics are all minimised).

        Values from different levels are not comparable (each level smooths and
        shrinks the images differently), so the best is sought within the level.
        """
        if not self.points:
            return None
        last = self.points[-1]
        return min((p for p in self.points if same_level(p, last)), key=lambda p: p.metric)

    def summary(self) -> str:
        """The line of text above the plot: the current level and its best value so far.

        (The metric's name is the plot's y label.)
        """
        b = self.best()
        if b is None:
            return f"{self.title}: no iterations yet"
        title = self.stage_titles.get(b.stage, self.title)
        return f"{title}, level {b.level + 1}: best {b.metric:.5g} at iteration {b.iteration}"

    # ------------------------------------------------------------------ drawing

    def _level_starts(self) -> list[int]:
        return [
            i
            for i in range(1, len(self.points))
            if not same_level(self.points[i], self.points[i - 1])
        ]

    def _wanted_limits(self) -> tuple[float, float, float, float]:
        """x limits holding every point with room to grow (so they rarely change); fixed y."""
        x_max = float(2 ** math.ceil(math.log2(max(len(self.points), _MIN_X))))
        return 0.0, x_max, *_Y_LIMITS

    def _outgrown(self) -> bool:
        if self._background is None or self._limits is None:
            return True
        return len(self.points) > self._limits[1]

    def _full_redraw(self) -> None:
        self.full_redraws += 1
        ax = self.ax
        self.canvas.style_axes(ax)
        ax.set_xlabel("iteration (levels side by side)", fontsize=7)
        ax.set_ylabel("share of the level's\nimprovement (1 = best)", fontsize=7)
        self._limits = self._wanted_limits()
        ax.set_xlim(*self._limits[:2])
        ax.set_ylim(*self._limits[2:])
        self.canvas.draw()
        self._background = self.canvas.copy_from_bbox(ax.bbox)

    def _sync_level_lines(self) -> list:
        starts = self._level_starts()
        while len(self._level_lines) < len(starts):
            self._level_lines.append(
                self.ax.axvline(
                    0, color=self.canvas.colors["text"], ls="--", lw=0.8, alpha=0.6, animated=True
                )
            )
        for line, i in zip(self._level_lines, starts, strict=False):
            line.set_xdata([i - 0.5, i - 0.5])
        return self._level_lines[: len(starts)]

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraws += 1
        if self._outgrown():
            self._full_redraw()
        self.canvas.restore_region(self._background)
        ys = [max(y, _Y_LIMITS[0]) for y in level_progress(self.points)]
        xs_line, ys_line = list(range(len(ys))), list(ys)
        for i in reversed(self._level_starts()):  # a gap between levels, not a jump
            xs_line.insert(i, i - 0.5)
            ys_line.insert(i, math.nan)
        self.line.set_data(xs_line, ys_line)
        b = self.best()
        at = self.points.index(b) if b else None
        self.marker.set_data(*(([at], [ys[at]]) if b else ([], [])))
        for artist in (*self._sync_level_lines(), self.line, self.marker):
            self.ax.draw_artist(artist)
        self.canvas.blit(self.ax.bbox)
        self.header.setText(self.summary())

    def _forget_background(self) -> None:
        self._background = None  # the saved background no longer fits the canvas
        self._dirty = True

    # ------------------------------------------------------------------ saving

    def save_png(self, path: str | Path) -> Path:
        """Write the plot as a PNG (via a temporary file), with level labels and best value."""
        self._redraw_if_dirty()
        lines = (self.line, self.marker, *self._sync_level_lines())
        colour = self.canvas.colors["text"]
        y0 = self.ax.get_ylim()[0]
        texts = [
            self.ax.text(
                i,
                y0,
                f"level {self.points[i].level + 1} ",
                fontsize=6,
                color=colour,
                rotation=90,
                ha="left",
                va="bottom",
            )
            for i in self._level_starts()
        ]
        self.ax.set_title(f"{self.title}, {self.summary()}", fontsize=7, color=colour)
        for artist in lines:
            artist.set_animated(False)
        try:
            with io.atomic_path(path) as tmp:
                self.canvas.figure.savefig(
                    tmp, format="png", dpi=150, facecolor=self.canvas.figure.get_facecolor()
                )
        finally:
            for artist in lines:
                artist.set_animated(True)
            for text in texts:
                text.remove()
            self.ax.set_title("")
            self._forget_background()
        return Path(path)

    def save_csv(self, path: str | Path) -> Path:
        """Write the points (level, iteration, metric, elapsed_s) as CSV."""
        return io.write_trace_csv(self.points, path)
