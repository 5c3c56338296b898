"""Per-value work on label images (structure ids) without sorting their voxels.

``np.unique(..., return_inverse=True)`` and ``return_counts=True`` sort the whole image:
about 15 s for a 75 M-voxel annotation on the sample's grid, most of it holding the GIL, so a
worker doing it freezes napari. The distinct values alone come from numpy's hashing unique,
and each voxel finds its value through a table indexed by value (or, for values too large for
one, by binary search among those few).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def distinct(labels: np.ndarray) -> np.ndarray:
    """The sorted distinct values of ``labels``."""
    return np.unique(np.asarray(labels))


#: Largest label value looked up through a table indexed by value (4 M entries, 16 MB);
#: larger ones (Allen ids reach 614,454,277) are found by binary search.
_TABLE_LIMIT = 2**22


def positions(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each voxel, the index of its value in the sorted ``values`` (which hold them all)."""
    labels, values = np.asarray(labels), np.asarray(values)
    if values.size and values[0] >= 0 and values[-1] < _TABLE_LIMIT:
        table = np.zeros(int(values[-1]) + 1, np.int32)
        table[values] = np.arange(values.size, dtype=np.int32)
        return table[labels]
    return np.searchsorted(values, labels)


def relabel(
    labels: np.ndarray, mapping: Callable[[int], int], dtype: np.dtype | None = None
) -> np.ndarray:
    """``labels`` with each value ``v`` replaced by ``mapping(v)``, called once per value.

    Parameters
    ----------
    labels : numpy.ndarray
        Any integer label image.
    mapping : callable
        Old value to new value.
    dtype : numpy.dtype, optional
        Of the result; default the dtype of ``labels``.
    """
    labels = np.asarray(labels)
    values = distinct(labels)
    table = np.array([mapping(int(v)) for v in values], dtype or labels.dtype)
    return table[positions(labels, values)]


def value_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``labels`` (sorted) and how many voxels hold each."""
    labels = np.asarray(labels).ravel()
    values = distinct(labels)
    return values, np.bincount(positions(labels, values), minlength=len(values))
