"""Block means: a smaller copy of a volume for the coarse (while-dragging) preview.

Sampling a big volume at a coarse grid's points reads a few voxels far apart for
every output voxel, which is slow (memory latency) and aliased. The mean of each
``f0 x f1 x f2`` block is a volume ``f`` times smaller per axis that a coarse grid
samples from quickly and without aliasing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .boundary import guard_public_functions
from .errors import SettingsError
from .volume import Volume

__all__ = ["block_factors", "block_mean"]


def block_factors(volume: Volume, spacing_mm: Sequence[float]) -> tuple[int, ...]:
    """Whole-voxel block sizes, per array axis, that come closest to ``spacing_mm`` from below.

    ``spacing_mm`` is the spacing the result should have at most (e.g. a coarse grid's,
    in mm); the factors are at least 1 and never make an axis shorter than 2 voxels.
    """
    target = float(np.min(spacing_mm))
    factors = np.maximum(np.floor(target / volume.spacing + 1e-9), 1).astype(int)
    factors = np.minimum(factors, np.maximum(np.asarray(volume.shape) // 2, 1))
    return tuple(int(f) for f in factors)


def block_mean(volume: Volume, factors: Sequence[int], chunk_voxels: int = 16_000_000) -> Volume:
    """The mean of every ``factors`` block of voxels, placed at the block's centre.

    Voxels left over at the far end of an axis (fewer than a block) are dropped. The
    result keeps the volume's dtype (integer means are rounded to the nearest integer).
    Memory: one float32 chunk of at most ``chunk_voxels`` source voxels at a time.

    Parameters
    ----------
    volume : Volume
        The source.
    factors : sequence of int
        Block size per array axis (voxels), each at least 1.

    Examples
    --------
    >>> v = Volume(np.arange(16.0).reshape(4, 4, 1), np.eye(4))
    >>> small = block_mean(v, (2, 2, 1))
    >>> small.data[..., 0].tolist(), small.index_to_world([0, 0, 0]).tolist()
    ([[2.5, 4.5], [10.5, 12.5]], [0.5, 0.5, 0.0])
    """
    f = np.asarray([int(x) for x in factors])
    if f.shape != (volume.ndim,) or np.any(f < 1):
        raise SettingsError(
            f"Block factors {tuple(factors)!r} are not {volume.ndim} whole numbers >= 1: give "
            f"one factor per axis, e.g. {(2,) * volume.ndim}."
        )
    if np.all(f == 1):
        return volume
    shape = np.asarray(volume.shape) // f
    data = np.asarray(volume.data)
    out = np.empty(tuple(shape), data.dtype)
    per_plane = int(np.prod(f[1:] * shape[1:])) * int(f[0])
    step = max(1, chunk_voxels // max(per_plane, 1))
    trimmed = tuple(slice(0, int(n * k)) for n, k in zip(shape[1:], f[1:], strict=True))
    for a in range(0, int(shape[0]), step):
        b = min(int(shape[0]), a + step)
        block = data[(slice(a * f[0], b * f[0]), *trimmed)].astype(np.float32)
        split = [b - a, f[0]] + [x for n, k in zip(shape[1:], f[1:], strict=True) for x in (n, k)]
        mean = block.reshape(split).mean(axis=tuple(range(1, 2 * volume.ndim, 2)))
        if np.issubdtype(data.dtype, np.integer):
            mean = np.rint(mean)
        out[a:b] = mean
    affine = volume.affine @ np.diag([*f.astype(float), 1.0])
    affine[: volume.ndim, volume.ndim] = volume.index_to_world((f - 1) / 2)
    return Volume(out, affine, volume.name, volume.world_axes, dict(volume.metadata))


guard_public_functions(globals())
