"""Matplotlib canvases that follow napari's theme."""

from __future__ import annotations

import matplotlib

matplotlib.use("QtAgg")

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils.theme import get_theme
from qtpy.QtCore import Signal


def theme_colors(theme_id: str) -> dict[str, str]:
    """Background, foreground and text colours (hex) of a napari theme."""
    theme = get_theme(theme_id)
    return {
        "background": theme.background.as_hex(),
        "foreground": theme.foreground.as_hex(),
        "text": theme.text.as_hex(),
        "highlight": theme.highlight.as_hex(),
        "accent": theme.current.as_hex(),
    }


class ThemedCanvas(FigureCanvasQTAgg):
    """A figure canvas whose colours follow the napari theme given; says when it is resized."""

    resized = Signal()

    def __init__(self, theme_id: str = "dark", width: float = 4, height: float = 3):
        # fixed margins: a constrained layout re-solves on every draw, which stalls the GUI
        super().__init__(Figure(figsize=(width, height)))
        self.figure.subplots_adjust(left=0.16, right=0.97, bottom=0.2, top=0.88)
        self.colors = theme_colors(theme_id)
        self.figure.set_facecolor(self.colors["background"])

    def set_theme(self, theme_id: str) -> None:
        """Take another napari theme's colours (the axes are restyled at their next draw)."""
        self.colors = theme_colors(theme_id)
        self.figure.set_facecolor(self.colors["background"])

    def style_axes(self, ax) -> None:
        """Colour an axes' face, spines, ticks and labels for the theme."""
        c = self.colors
        ax.set_facecolor(c["background"])
        for spine in ax.spines.values():
            spine.set_color(c["highlight"])
        ax.tick_params(colors=c["text"], labelsize=7)
        ax.xaxis.label.set_color(c["text"])
        ax.yaxis.label.set_color(c["text"])
        ax.title.set_color(c["text"])

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.resized.emit()
