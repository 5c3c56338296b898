"""The "check orientation" view: mean projections of the volume next to the atlas's."""

from __future__ import annotations

from napari_ccf_align.core.align.projections import Projection
from napari_ccf_align.plugin.widgets._mpl import ThemedCanvas

_VIEWS = ("coronal", "sagittal", "axial")


class OrientationView(ThemedCanvas):
    """Coronal, sagittal and axial mean projections (rows): the volume left, the atlas right.

    Two columns keep each picture about half the dock wide; the anatomical ends
    (L/R, P/A, I/S) are written at the picture edges instead of millimetre ticks,
    so nothing overlaps at a dock's width.
    """

    def __init__(self, theme_id: str = "dark"):
        super().__init__(theme_id, width=3.6, height=4.6)
        self.figure.subplots_adjust(
            left=0.12, right=0.98, bottom=0.03, top=0.93, wspace=0.12, hspace=0.22
        )
        self.setMinimumHeight(420)
        self.shown = False  # whether projections of a volume are on the view
        self.show_projections([], [])

    def show_projections(
        self, volume: list[Projection], atlas: list[Projection], volume_name: str = "your volume"
    ) -> None:
        """Draw the volume's projections (left column) and the atlas's (right column)."""
        self.figure.clear()
        axes = self.figure.subplots(3, 2)
        text = self.colors["text"]
        short = volume_name if len(volume_name) <= 24 else volume_name[:23] + "…"
        for col, (projs, title, hint) in enumerate(
            ((volume, short, "check a volume"), (atlas, "atlas", "load the atlas"))
        ):
            axes[0, col].set_title(title, fontsize=8, color=text)
            for row in range(3):
                ax = axes[row, col]
                self.style_axes(ax)
                ax.set_xticks([])
                ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(_VIEWS[row], fontsize=8, color=text)
                if row >= len(projs):
                    ax.text(0.5, 0.5, hint, ha="center", va="center", fontsize=7, color=text,
                            transform=ax.transAxes)  # fmt: skip
                    continue
                p = projs[row]
                ax.imshow(p.image, origin="lower", extent=p.extent, cmap="gray", aspect="equal")
                (left, right), (down, up) = p.ends
                for x, y, letter, ha, va in (
                    (0.02, 0.5, left, "left", "center"),
                    (0.98, 0.5, right, "right", "center"),
                    (0.5, 0.02, down, "center", "bottom"),
                    (0.5, 0.98, up, "center", "top"),
                ):
                    ax.text(x, y, letter, ha=ha, va=va, fontsize=7, color="#ffcc00",
                            transform=ax.transAxes)  # fmt: skip
        self.shown = bool(volume)
        self.draw_idle()
