"""Quality-control figures of a registration: Jacobian determinant, folding, displacement size.

Pure functions on arrays with their voxel spacing; 2D and 3D alike. (The overlays,
grids and similarity figures of the inspection view come next.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .boundary import guard_public_functions
from .errors import DimensionError


def _check_field(disp: np.ndarray, spacing_mm: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    disp = np.asarray(disp)
    spacing = np.asarray(spacing_mm, dtype=float).reshape(-1)
    n = disp.ndim - 1
    if n not in (2, 3) or disp.shape[-1] != n or spacing.size != n:
        raise DimensionError(
            f"A displacement field of shape {disp.shape} with {spacing.size} spacings is not a "
            "2D or 3D vector field: give an array of shape (..., ndim) and one spacing per axis."
        )
    return disp, spacing


def jacobian_determinant(disp: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
    """det(I + grad u) of a displacement field ``u`` (mm) on a grid of spacing ``spacing_mm``.

    The field's components are taken along the grid's own axes (component ``k``
    along array axis ``k``), in millimetres; derivatives are central differences
    in physical units (one-sided at the edges). 1 = no volume change, 1.331 = 10 %
    larger along every axis, <= 0 = folding.

    Examples
    --------
    >>> x = np.indices((5, 6, 7), dtype=float).transpose(1, 2, 3, 0) * 0.1
    >>> float(jacobian_determinant(0.1 * x, (0.1, 0.1, 0.1)).mean().round(6))
    1.331
    """
    disp, spacing = _check_field(disp, spacing_mm)
    n = disp.shape[-1]
    grads = np.empty((*disp.shape[:-1], n, n), dtype=np.float64)
    for k in range(n):
        for j, g in enumerate(np.gradient(disp[..., k].astype(np.float64), *spacing)):
            grads[..., k, j] = g
    grads += np.eye(n)
    return np.linalg.det(grads)


def folding_mask(jacobian: np.ndarray) -> np.ndarray:
    """Where the map folds (Jacobian determinant <= 0), as uint8 labels (1 = folding)."""
    return (np.asarray(jacobian) <= 0).astype(np.uint8)


def displacement_magnitude(disp: np.ndarray) -> np.ndarray:
    """Length of each displacement vector, in the field's unit (mm)."""
    return np.linalg.norm(np.asarray(disp, dtype=np.float64), axis=-1)


guard_public_functions(globals())
