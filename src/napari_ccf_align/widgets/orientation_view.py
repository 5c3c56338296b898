"""The "check orientation" view: mean projections of the volume next to the atlas's."""

from __future__ import annotations

from ..core.projections import Projection
from ._mpl import ThemedCanvas


class OrientationView(ThemedCanvas):
    """Two rows of coronal, sagittal and axial mean projections, labelled anatomically."""

    def __init__(self, theme_id: str = "dark"):
        super().__init__(theme_id, width=4.2, height=3.2)
        self.figure.subplots_adjust(
            left=0.1, right=0.98, bottom=0.1, top=0.93, wspace=0.45, hspace=0.55
        )
        self.setMinimumHeight(300)
        self.show_projections([], [])

    def show_projections(
        self, volume: list[Projection], atlas: list[Projection], volume_name: str = "your volume"
    ) -> None:
        """Draw the volume's projections (top row) and the atlas's (bottom row)."""
        self.figure.clear()
        axes = self.figure.subplots(2, 3)
        for row, (projs, title) in enumerate(((volume, volume_name), (atlas, "atlas"))):
            for col in range(3):
                ax = axes[row, col]
                self.style_axes(ax)
                if col >= len(projs):
                    ax.set_xticks([])
                    ax.set_yticks([])
                    hint = "load a volume" if row == 0 else "load the atlas"
                    ax.text(
                        0.5,
                        0.5,
                        hint,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=self.colors["text"],
                        transform=ax.transAxes,
                    )
                    continue
                p = projs[col]
                ax.imshow(p.image, origin="lower", extent=p.extent, cmap="gray", aspect="equal")
                ax.set_title(f"{title}: {p.name}", fontsize=7)
                ax.set_xlabel(p.xlabel, fontsize=6)
                ax.set_ylabel(p.ylabel, fontsize=6)
        self.draw_idle()
