"""Mean projections of a volume along the three anatomical axes, for orientation checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_ccf_align.core.volume import Volume

#: (name, axis averaged away, horizontal axis, vertical axis), world axes R=0, A=1, S=2.
VIEWS = (("coronal", 1, 0, 2), ("sagittal", 0, 1, 2), ("axial", 2, 0, 1))
_ENDS = {0: ("L", "R"), 1: ("P", "A"), 2: ("I", "S")}


@dataclass(frozen=True)
class Projection:
    """One mean projection, ready for ``imshow(image, origin="lower", extent=extent)``."""

    name: str
    image: np.ndarray
    extent: tuple[float, float, float, float]
    xlabel: str
    ylabel: str
    ends: tuple[tuple[str, str], tuple[str, str]] = (("", ""), ("", ""))
    """Anatomical letters at the (left, right) and (bottom, top) edges of the picture."""


def mean_projections(volume: Volume) -> list[Projection]:
    """Coronal, sagittal and axial mean projections in world (RAS mm) coordinates.

    The volume is first laid out in RAS axis order (a view, no resampling), so the
    pictures show where the stated orientation puts the tissue: if the code is
    wrong, the brain appears upside down or back to front next to the atlas.
    Rows of ``image`` run along the vertical world axis, increasing upwards with
    ``origin="lower"``.
    """
    ras = volume.reoriented("RAS")
    data = np.asarray(ras.data, dtype=np.float32)
    lo = ras.index_to_world(np.zeros(3)) - ras.spacing / 2
    hi = ras.index_to_world(np.asarray(ras.shape) - 1.0) + ras.spacing / 2
    out = []
    for name, away, h, v in VIEWS:
        img = data.mean(axis=away)
        keep = [a for a in range(3) if a != away]
        if keep.index(v) == 1:  # rows must run along the vertical axis
            img = img.T
        out.append(
            Projection(
                name,
                img,
                (float(lo[h]), float(hi[h]), float(lo[v]), float(hi[v])),
                f"{_ENDS[h][0]} ← → {_ENDS[h][1]} (mm)",
                f"{_ENDS[v][0]} ← → {_ENDS[v][1]} (mm)",
                (_ENDS[h], _ENDS[v]),
            )
        )
    return out
