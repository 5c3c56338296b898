"""The one protocol every registration result answers, linear or deformable.

A result maps the sample's world to the atlas's world (both RAS mm). Whether it came
from SimpleITK (:class:`~.rigid.RigidResult`) or DIPY SyN (:class:`~.syn.SynResult`),
fresh or loaded from a session, callers ask it the same questions and never look at
its type:

- ``method`` (``"rigid"``, ``"affine+syn"``, ...), ``deformable``, ``linear_stage``;
- the map each way: ``to_atlas(sample_points)``, ``to_moving(atlas_points)``;
- images either way: ``warp(atlas_grid, sample)`` and ``warp_to_sample(atlas_image,
  sample_grid)``, linear or nearest neighbour for labels;
- the deformation beyond the linear stage on a grid (``deformation``), the grid it was
  computed on (``field_grid``; None for a linear result), and ``matrix``,
  the linear stage's whole moving -> atlas map, whose determinant the Jacobian starts from.

The helpers below are how a result samples: :func:`warp_through` (the fused kernel: a
linear map, the displacement field on its coarse grid, the image, in one pass) and
:func:`warp_through_matrix` (the previews' kernel, for a linear warp of an image).
"""

from __future__ import annotations

import threading
import weakref
import zlib
from typing import Protocol, runtime_checkable

import numpy as np

from napari_ccf_align.core import sampling
from napari_ccf_align.core.progress import TracePoint
from napari_ccf_align.core.volume import Volume


@runtime_checkable
class Result(Protocol):
    """What every registration result answers (see the module docstring)."""

    matrix: np.ndarray
    trace: tuple[TracePoint, ...]
    final_metric: float
    seconds: float
    stop_reason: str

    @property
    def method(self) -> str: ...

    @property
    def deformable(self) -> bool: ...

    @property
    def linear_stage(self): ...

    def to_atlas(self, sample_points: np.ndarray) -> np.ndarray: ...

    def to_moving(self, atlas_points: np.ndarray) -> np.ndarray: ...

    def warp(self, fixed: Volume, moving: Volume, labels: bool = False) -> Volume: ...

    def warp_to_sample(
        self, atlas_image: Volume, moving: Volume, labels: bool = True
    ) -> Volume: ...

    def deformation(self, grid: Volume) -> np.ndarray | None: ...

    @property
    def field_grid(self) -> Volume | None: ...


def scale_note(matrix: np.ndarray) -> str:
    """What a moving -> atlas map (4 x 4, RAS mm) says of the brain's size, for a status line.

    A map that enlarges by 4 % fits a brain 4 % smaller than the atlas (cleared tissue
    shrinks). Empty for a map within 0.5 % of the atlas's size (rigid).

    Examples
    --------
    >>> scale_note(np.diag([1.04, 1.04, 1.04, 1.0]))
    'scale 1.040: your brain is 3.8 % smaller than the atlas'
    """
    linear = np.asarray(matrix, float)[:3, :3]
    scale = float(abs(np.linalg.det(linear)) ** (1.0 / 3.0))
    if abs(scale - 1.0) < 0.005:
        return ""
    size = 100.0 * abs(1.0 / scale - 1.0)
    word = "smaller" if scale > 1 else "larger"
    note = f"scale {scale:.3f}: your brain is {size:.1f} % {word} than the atlas"
    axes = np.linalg.svd(linear, compute_uv=False)
    if axes.max() / axes.min() > 1.01:  # affine: not the same along every axis
        note += f" (by {axes.min():.3f} to {axes.max():.3f} along its principal axes)"
    return note


def warped_name(image: Volume, space: str) -> str:
    """The name of ``image`` mapped into ``space`` (``"atlas"`` or ``"sample"``)."""
    return f"{image.name} (in {space})"


def warp_through(
    image: Volume,
    grid: Volume,
    space: str,
    before: np.ndarray,
    after: np.ndarray,
    field: np.ndarray | None = None,
    field_grid: Volume | None = None,
    labels: bool = False,
) -> Volume:
    """``image`` on ``grid`` through ``after ∘ (identity + field) ∘ before`` (world maps).

    Every voxel centre ``x`` of ``grid`` (world, RAS mm) goes to ``y = before @ x``, is
    displaced by ``field`` (RAS mm on ``field_grid``, ITK's edge rule; none when None) and
    lands at ``after @ (y + field(y))`` in ``image``'s world, where ``image`` is sampled:
    trilinear, or nearest neighbour for ``labels``. One pass of the fused kernel
    (:func:`.sampling.fused.warp`), in the image's dtype, over threads.
    ``space`` names where the output lives (``"atlas"`` or ``"sample"``) for its name.
    """
    pre = np.asarray(before, float) @ grid.affine
    post = np.linalg.inv(image.affine) @ np.asarray(after, float)
    field_index = None if field is None else np.linalg.inv(field_grid.affine)
    source = np.asarray(image.data)
    last = _last_warps[bool(labels)]
    remember = last.worth_keeping(source, grid.shape)
    if remember:  # the values' checksum too: a layer may be painted in place
        key = (pre.tobytes(), post.tobytes(), grid.shape, _checksum(source))
        if field is not None:
            key += (field_index.tobytes(),)
    cached = last.get(key, source, field) if remember else None
    if cached is not None:
        data = cached.copy()  # the caller's to change (a Labels layer is painted in place)
    else:
        data = sampling.fused.warp(*_kernel_inputs(grid, source, pre, post, field, field_index),
                                   labels)  # fmt: skip
        if grid.ndim == 2:
            data = data[0]
        if remember:
            last.put(key, source, field, data.copy())
    return Volume(
        data,
        grid.affine,
        warped_name(image, space),
        grid.world_axes,
        {"registered_to": grid.name, "labels": bool(labels), **_kept_by_nearest(image, labels)},
    )


def _kernel_inputs(grid: Volume, source, pre, post, field, field_index) -> tuple:
    """The fused kernel's arguments; a section (2D grid) as a single plane of a 3D one."""
    if grid.ndim != 2:
        return source, grid.shape, pre, post, field, field_index
    if field is not None:
        field = np.concatenate([np.zeros((*field.shape[:-1], 1), field.dtype), field], -1)[None]
        field_index = _planar(field_index)
    return source[None], (1, *grid.shape), _planar(pre), _planar(post), field, field_index


class _LastWarp:
    """The last warp's output, kept while its source and field arrays live: the annotation
    onto the sample (asked for by the Inspect view, the session's volumes and Apply alike),
    or the sample onto the atlas (the run, the figures and the report); see
    :meth:`worth_keeping`."""

    def __init__(self, limit_bytes: int = 1 << 30, min_voxels: int = 16_000_000) -> None:
        self.limit_bytes = limit_bytes
        self.min_voxels = min_voxels
        self._entry: tuple | None = None
        self._lock = threading.Lock()

    def worth_keeping(self, source: np.ndarray, shape: tuple[int, ...]) -> bool:
        """Whether a warp of ``source`` onto a grid of ``shape`` is kept: large enough to be
        worth its checksum (a slab of a plane-by-plane output is not), small enough to hold."""
        return int(np.prod(shape)) >= self.min_voxels and source.nbytes <= self.limit_bytes // 4

    def get(self, key: tuple, source: np.ndarray, field: np.ndarray | None):
        with self._lock:
            if self._entry is None:
                return None
            k, source_ref, field_ref, data = self._entry
        if k != key or source_ref() is not source:
            return None
        kept_field = None if field_ref is None else field_ref()
        return data if kept_field is field else None

    def put(self, key: tuple, source: np.ndarray, field: np.ndarray | None, data) -> None:
        if data.nbytes > self.limit_bytes:
            return
        try:
            entry = (key, weakref.ref(source), None if field is None else weakref.ref(field), data)
        except TypeError:  # an array type without weak references: nothing kept
            return
        with self._lock:
            self._entry = entry


#: One for label images, one for images.
_last_warps = {True: _LastWarp(), False: _LastWarp()}


def _checksum(values: np.ndarray) -> int:
    """CRC-32 of an array's bytes (about 1 GB/s)."""
    return zlib.crc32(np.ascontiguousarray(values).view(np.uint8).reshape(-1))


def _kept_by_nearest(image: Volume, labels: bool) -> dict:
    """Metadata that still holds after a nearest-neighbour warp: the table of a renumbered
    annotation (its values are copied, never blended)."""
    ids = image.metadata.get("structure_ids")
    return {"structure_ids": ids} if labels and ids is not None else {}


def _planar(matrix: np.ndarray) -> np.ndarray:
    """A 2D homogeneous map ``(3, 3)`` as the 3D map that leaves a new first axis alone."""
    out = np.eye(4)
    out[1:, 1:] = matrix
    return out


def warp_through_matrix(
    fixed: Volume, moving: Volume, matrix: np.ndarray, labels: bool = False
) -> Volume:
    """``moving`` on the atlas grid ``fixed`` through a moving -> atlas matrix (RAS mm).

    Linear sampling goes through the previews' kernel (:func:`.sampling.linear`,
    SimpleITK's rules, integers rounded to nearest), so a preview and a result of the
    same map agree voxel for voxel; ``labels`` are sampled by nearest neighbour.
    """
    m = np.asarray(matrix, dtype=float)
    if labels:
        return warp_through(moving, fixed, "atlas", np.eye(4), np.linalg.inv(m), labels=True)
    grid_to_moving = sampling.index_map(moving.affine, fixed.affine, m)
    data = sampling.linear(np.asarray(moving.data), grid_to_moving, fixed.shape)
    return Volume(
        data,
        fixed.affine,
        warped_name(moving, "atlas"),
        fixed.world_axes,
        {"registered_to": fixed.name, "labels": False},
    )
