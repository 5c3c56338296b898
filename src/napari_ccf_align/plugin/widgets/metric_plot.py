"""Live plot of the registration metric per iteration, level boundaries marked, best shown."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.ticker import MaxNLocator
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from napari_ccf_align.core import io
from napari_ccf_align.core.progress import ProgressEvent, TracePoint, same_level
from napari_ccf_align.plugin.widgets._mpl import ThemedCanvas

_MIN_X = 64  # iterations the x axis shows at first; doubled when outgrown
_Y_HEADROOM = 0.25  # share of the values' span added beyond them when the y limits are refit


class MetricPlot(QWidget):
    """The metric against iteration for the running stage, its levels side by side, with
    the current level's best value in text above it.

    The y axis is the metric itself, in the stage's units (Mattes MI for rigid and
    affine, DIPY's energy for SyN: each stage is plotted on its own, from its first
    iteration). Each level smooths and shrinks the images differently, so a level starts
    where its own images put it: a jump at a level's dashed line is not a step back.

    Events are added from the GUI thread (they arrive by Qt signal from the
    worker); drawing happens on a timer, at most every ``interval_ms``, so a fast
    optimiser cannot flood the GUI. A full Agg render of the axes takes tens of
    milliseconds (mostly tick-label text), so it happens only when the data
    outgrow the axes limits, which grow geometrically with headroom (a handful of
    times per run). Every other update blits the line, the best point and the level
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
        self._first_shown: TracePoint | None = None
        colors = self.canvas.colors
        self.ax = self.canvas.figure.add_subplot(111)
        self.ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        self.ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
        self.ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))  # 1e5 above, not 100000
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
        """Forget every point and show empty axes labelled ``title`` (at the timer's next
        tick: a full draw costs the GUI thread tens of milliseconds, not to be added to a
        dock's construction or a run's start)."""
        self.points = []
        self.title = title
        self._limits = None
        self._dirty = True

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

    def shown(self) -> list[TracePoint]:
        """The points plotted: those of the running stage (rigid, affine or SyN)."""
        if not self.points:
            return []
        stage = self.points[-1].stage
        first = len(self.points)
        while first > 0 and self.points[first - 1].stage == stage:
            first -= 1
        return self.points[first:]

    def _level_starts(self) -> list[int]:
        pts = self.shown()
        return [i for i in range(1, len(pts)) if not same_level(pts[i], pts[i - 1])]

    def _wanted_limits(self) -> tuple[float, float, float, float]:
        """Limits holding every shown point with room to grow, so that they rarely change."""
        pts = self.shown()
        x_max = float(2 ** math.ceil(math.log2(max(len(pts), _MIN_X))))
        values = [p.metric for p in pts if math.isfinite(p.metric)]
        if not values:
            return 0.0, x_max, -1.0, 1.0
        lo, hi = min(values), max(values)
        span = hi - lo if hi > lo else max(abs(hi), 1e-12)
        lo, hi = lo - _Y_HEADROOM * span, hi + _Y_HEADROOM * span
        if self._limits is not None and pts[0] is self._first_shown:  # outgrown: half as wide again
            old_lo, old_hi = self._limits[2:]
            lo = min(lo, old_lo - (old_hi - old_lo) / 2) if lo < old_lo else old_lo
            hi = max(hi, old_hi + (old_hi - old_lo) / 2) if hi > old_hi else old_hi
        return 0.0, x_max, lo, hi

    def _outgrown(self) -> bool:
        if self._background is None or self._limits is None:
            return True
        pts = self.shown()
        if len(pts) > self._limits[1] or (pts and pts[0] is not self._first_shown):
            return True
        values = [p.metric for p in pts if math.isfinite(p.metric)]
        return bool(values) and (min(values) < self._limits[2] or max(values) > self._limits[3])

    def _full_redraw(self) -> None:
        self.full_redraws += 1
        ax = self.ax
        self.canvas.style_axes(ax)
        ax.set_xlabel("iteration (levels side by side)", fontsize=7)
        pts = self.shown()
        title = self.stage_titles.get(pts[0].stage, self.title) if pts else self.title
        ax.set_ylabel(_two_lines(title), fontsize=7)
        self._limits = self._wanted_limits()
        self._first_shown = pts[0] if pts else None
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
        pts = self.shown()
        ys = [p.metric for p in pts]
        xs_line, ys_line = list(range(len(ys))), list(ys)
        for i in reversed(self._level_starts()):  # a gap between levels, not a jump
            xs_line.insert(i, i - 0.5)
            ys_line.insert(i, math.nan)
        self.line.set_data(xs_line, ys_line)
        b = self.best()
        at = next((i for i, p in enumerate(pts) if p is b), None)
        self.marker.set_data(*(([at], [ys[at]]) if at is not None else ([], [])))
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
                f"level {self.shown()[i].level + 1} ",
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


def _two_lines(title: str) -> str:
    """A metric's title short enough for the y axis of a 200-pixel-high plot:
    "Mattes MI (SimpleITK minimises −MI: lower is better)" -> "Mattes MI\n(lower is better)"."""
    head = title.partition(" (")[0]
    return f"{head}\n(lower is better)" if "lower is better" in title else head
