"""The one protocol every registration result answers, linear or deformable.

A result maps the sample's world to the atlas's world (both RAS mm). Whether it came
from SimpleITK (:class:`~.rigid.RigidResult`) or DIPY SyN (:class:`~.syn.SynResult`),
fresh or loaded from a session, callers ask it the same questions and never look at
its type:

- ``method`` (``"rigid"``, ``"affine+syn"``, ...), ``deformable``, ``linear_stage``;
- the map each way: ``to_atlas(sample_points)``, ``to_moving(atlas_points)``;
- images either way: ``warp(atlas_grid, sample)`` and ``warp_to_sample(atlas_image,
  sample_grid)``, linear or nearest neighbour for labels;
- the deformation beyond the linear stage on a grid (``deformation``), and ``matrix``,
  the linear stage's whole moving -> atlas map, whose determinant the Jacobian starts from.

The helpers below are the two ways a result samples: through its matrix alone (the
compiled kernel, SimpleITK's linear rules) or through its point map.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from napari_ccf_align.core import frames, sampling
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


def warped_name(image: Volume, space: str) -> str:
    """The name of ``image`` mapped into ``space`` (``"atlas"`` or ``"sample"``)."""
    return f"{image.name} (in {space})"


def warp_through_matrix(
    fixed: Volume, moving: Volume, matrix: np.ndarray, labels: bool = False
) -> Volume:
    """``moving`` on the atlas grid ``fixed`` through a moving -> atlas matrix (RAS mm).

    Linear sampling goes through the compiled kernel (:func:`.sampling.linear`,
    SimpleITK's rules, integers rounded to nearest), so a preview and a result of the
    same map agree voxel for voxel; ``labels`` are sampled by nearest neighbour.
    """
    m = np.asarray(matrix, dtype=float)
    if labels:
        inverse = np.linalg.inv(m)
        return warp_through_map(
            moving, fixed, lambda p: frames.apply_affine(inverse, p), True, "atlas"
        )
    grid_to_moving = sampling.index_map(moving.affine, fixed.affine, m)
    data = sampling.linear(np.asarray(moving.data), grid_to_moving, fixed.shape)
    return Volume(
        data,
        fixed.affine,
        warped_name(moving, "atlas"),
        fixed.world_axes,
        {"registered_to": fixed.name, "labels": False},
    )


def warp_through_map(image: Volume, grid: Volume, to_image, labels: bool, space: str) -> Volume:
    """``image`` sampled on ``grid`` at ``to_image(p)`` for every voxel centre ``p`` of ``grid``.

    ``space`` names where the output lives (``"atlas"`` or ``"sample"``) for its name.
    """
    return sampling.sample_on_grid(image, grid, to_image, labels, warped_name(image, space))
