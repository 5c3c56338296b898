"""Test subjects with ground truth: a procedural brain phantom and a simulated brain.

The simulated brain is a template seen through a known rigid transform, a
smooth deformation, an intensity change, noise and a missing piece, so every
later step (alignment, registration, QC) has a truth to be checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from napari_ccf_align.core import frames
from napari_ccf_align.core.volume import Volume

#: The rigid part of the simulated brain's truth: about 20 degrees in all and a shift.
SIMULATED_ROTATION_DEG = (10.0, -12.0, 12.0)
SIMULATED_TRANSLATION_MM = (0.4, -0.6, 0.3)


def brain_phantom(resolution_um: int = 100, shape: tuple[int, int, int] | None = None) -> Volume:
    """A procedural mouse-brain-like volume on the Allen RAS grid.

    Two hemispheres with a midline groove, olfactory bulbs in front, a cerebellum
    behind and below, dark ventricles: asymmetric front to back and top to bottom,
    so an orientation mistake shows. Values are uint16 like the Allen template.

    Parameters
    ----------
    resolution_um : int
        Voxel size in µm (the 100 µm grid is 114 x 132 x 80 voxels, R x A x S).
    shape : tuple of int, optional
        Grid shape (R, A, S); default the Allen grid at ``resolution_um``.
    """
    from napari_ccf_align.core.io.atlas import RAW_SHAPES

    if shape is None:
        ap, dv, ml = RAW_SHAPES[resolution_um]
        shape = (ml, ap, dv)
    h = resolution_um / 1000.0
    r, a, s = (np.arange(n) * h for n in shape)
    extent = np.asarray(shape) * h
    cr, ca, cs = extent[0] / 2, extent[1] * 0.48, extent[2] * 0.55
    R, A, S = np.meshgrid(r - cr, a - ca, s - cs, indexing="ij")

    def ellipsoid(c, radii):
        return (
            ((R - c[0]) / radii[0]) ** 2
            + ((A - c[1]) / radii[1]) ** 2
            + ((S - c[2]) / radii[2]) ** 2
        )

    cerebrum = ellipsoid((0, 0.6, 0.2), (4.6, 4.6, 2.9)) < 1
    groove = (np.abs(R) < 0.15) & (S > 1.5)
    bulbs = (ellipsoid((0.7, 5.4, 0.0), (0.7, 1.1, 0.8)) < 1) | (
        ellipsoid((-0.7, 5.4, 0.0), (0.7, 1.1, 0.8)) < 1
    )
    cerebellum = ellipsoid((0, -4.2, -0.6), (3.0, 1.6, 2.0)) < 1
    brainstem = ellipsoid((0, -2.5, -2.0), (1.3, 3.0, 1.0)) < 1
    tissue = (cerebrum & ~groove) | bulbs | cerebellum | brainstem
    cortex = tissue & (ellipsoid((0, 0.6, 0.2), (4.0, 4.0, 2.3)) >= 1) & cerebrum
    ventricles = (ellipsoid((1.0, 0.8, 0.6), (0.3, 1.4, 0.7)) < 1) | (
        ellipsoid((-1.0, 0.8, 0.6), (0.3, 1.4, 0.7)) < 1
    )
    img = np.zeros(shape, np.float32)
    img[tissue] = 160
    img[cortex] = 260
    img[cerebellum] = 320
    img[bulbs] = 220
    img[ventricles] = 40
    # a fixed smooth texture gives the metric features to hold on to, as real tissue does
    texture = ndimage.gaussian_filter(np.random.default_rng(7).normal(size=shape), 0.3 / h)
    img *= 1.0 + 0.25 * texture / (texture.std() or 1.0)
    img = ndimage.gaussian_filter(np.clip(img, 0, None), 0.08 / h)
    return Volume.from_array(
        img.astype(np.uint16),
        h,
        "RAS",
        name="brain phantom",
        # "atlas": the widgets take it as the fixed side (offline, the demo registers to it);
        # sessions embed it, as it is not the Allen CCF
        metadata={"phantom": True, "atlas": "brain phantom", "resolution_um": resolution_um},
    )


@dataclass(frozen=True)
class SimulatedBrain:
    """A simulated subject and the truth it was made with."""

    volume: Volume
    truth: frames.RigidParams
    displacement_mm: float
    from_phantom: bool
    phases: tuple = ()  # the smooth field's sine phases, per component (for the exact truth)
    extent_mm: tuple = ()

    def deformation(self, q: np.ndarray) -> np.ndarray:
        """The smooth displacement ``d(q)`` (mm) at atlas-side points ``q`` (``(n, 3)``)."""
        q = np.asarray(q, float)
        d = np.zeros_like(q)
        for k, phase in enumerate(self.phases):
            d[:, k] = self.displacement_mm * np.prod(
                [np.sin(np.pi * q[:, j] / self.extent_mm[j] * 2 + phase[j]) for j in range(3)],
                axis=0,
            )
        return d

    def atlas_to_subject(self, x: np.ndarray, iterations: int = 30) -> np.ndarray:
        """Where the true map shows atlas points ``x`` (RAS mm) in the subject (RAS mm).

        The subject point ``p`` shows the atlas at ``q + d(q)``, ``q = truth @ p``: ``q``
        solves ``q + d(q) = x`` (fixed-point iteration; ``d`` is small and smooth).
        """
        x = np.asarray(x, float)
        q = x.copy()
        for _ in range(iterations):
            q = x - self.deformation(q)
        return frames.apply_affine(np.linalg.inv(self.truth.matrix()), q)


def simulate_brain(
    template: Volume,
    rotation_deg=SIMULATED_ROTATION_DEG,
    translation_mm=SIMULATED_TRANSLATION_MM,
    deformation_mm: float = 0.15,
    noise: float = 0.03,
    missing_anterior_mm: float | None = 10.8,
    seed: int = 0,
) -> SimulatedBrain:
    """The template seen through a known rigid transform and a smooth deformation.

    The moving voxel at world point ``p`` shows the template at ``q + d(q)``, with
    ``q = truth.matrix() @ p`` and ``d`` a smooth field of at most about
    ``deformation_mm``. So ``truth`` maps the subject onto the atlas (the
    transform registration must recover). Intensities are changed by a gamma,
    a gain and a smooth bias field, Gaussian noise of ``noise`` times the
    maximum is added, and tissue with an atlas A coordinate above
    ``missing_anterior_mm`` (the olfactory bulb) is missing.

    Parameters
    ----------
    template : Volume
        RAS atlas template (or phantom).
    rotation_deg, translation_mm : tuple of float
        Rigid truth (degrees about R, A, S; mm), centred on the template's centre.
    deformation_mm : float
        Peak smooth displacement, mm.
    noise : float
        Noise standard deviation as a fraction of the intensity maximum.
    missing_anterior_mm : float or None
        Remove tissue anterior of this atlas A coordinate (mm); None keeps it all.
    seed : int
        Random seed.
    """
    rng = np.random.default_rng(seed)
    truth = frames.RigidParams(rotation_deg, translation_mm, tuple(template.centre_mm))
    shape = template.shape
    idx = np.indices(shape, dtype=np.float32).reshape(3, -1).T
    q = frames.apply_affine(truth.matrix() @ template.affine, idx)
    # smooth displacement: a few low-frequency sine modes
    extent = np.asarray(shape) * template.spacing
    phases = tuple(rng.uniform(0, 2 * np.pi, 3) for _ in range(3))
    field = SimulatedBrain(None, truth, deformation_mm, False, phases, tuple(extent))
    d = field.deformation(q)
    src = frames.apply_affine(np.linalg.inv(template.affine), q + d)
    values = ndimage.map_coordinates(
        template.data.astype(np.float32), src.T, order=1, mode="constant", cval=0.0
    ).reshape(shape)
    if missing_anterior_mm is not None:
        values[(q[:, 1] > missing_anterior_mm).reshape(shape)] = 0.0
    peak = float(values.max()) or 1.0
    norm = values / peak
    bias = 1.0 + 0.15 * np.sin(np.pi * q[:, 2] / extent[2]).reshape(shape)
    out = 0.8 * peak * norm**0.8 * bias
    out += rng.normal(0, noise * peak, shape)
    out = np.clip(out, 0, None).astype(np.float32)
    volume = Volume(
        out,
        template.affine.copy(),
        "simulated brain",
        "RAS",
        {"truth": truth.to_dict(), "source": template.name},
    )
    return SimulatedBrain(
        volume,
        truth,
        deformation_mm,
        bool(template.metadata.get("phantom")),
        phases,
        tuple(float(e) for e in extent),
    )


def smooth_field(
    shape: tuple[int, ...], spacing_mm, peak_voxels: float, seed: int = 0
) -> np.ndarray:
    """A smooth displacement field (mm, world components along the array axes) of
    about ``peak_voxels`` voxels at most: a few low-frequency sine modes."""
    rng = np.random.default_rng(seed)
    n = len(shape)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    out = np.zeros((*shape, n), np.float64)
    for k in range(n):
        phase = rng.uniform(0, 2 * np.pi, n)
        freq = rng.uniform(0.6, 1.2, n)
        out[..., k] = np.prod(
            [np.sin(2 * np.pi * freq[j] * grids[j] + phase[j]) for j in range(n)], axis=0
        )
    out *= peak_voxels * float(np.min(spacing_mm)) / np.abs(out).max()
    return out


def deformed(template: Volume, disp_mm: np.ndarray) -> Volume:
    """The sample ``M(y) = T(y + d(y))``: its point ``y`` lies at the atlas point ``y + d(y)``.

    ``template`` must be axis-aligned with positive spacing (the RAS atlas).
    """
    idx = np.indices(template.shape, dtype=np.float64)
    shift = np.moveaxis(disp_mm / np.asarray(template.spacing), -1, 0)
    data = ndimage.map_coordinates(
        np.asarray(template.data, np.float32), idx + shift, order=1, mode="nearest"
    )
    return template.with_data(data.astype(np.float32), name=f"{template.name} (deformed)")


def error_mm(
    result, truth: np.ndarray, fixed: Volume, mask: np.ndarray | None = None, step: int = 1
) -> float:
    """Mean distance (mm) between where a result and the true map show the atlas's voxels.

    ``result`` is any registration result (or a moving -> atlas matrix, RAS mm), ``truth``
    the true moving -> atlas matrix; the distance is measured in the sample's frame at the
    atlas voxels in ``mask`` (default: the atlas's tissue), every ``step``-th of them:
    ``|result.to_moving(p) - inv(truth) p|``.
    """
    from napari_ccf_align.core.align import tissue_threshold

    if mask is None:
        mask = fixed.data > tissue_threshold(fixed)
    pts = fixed.index_to_world(np.argwhere(mask)[::step])
    if isinstance(result, np.ndarray):
        found = frames.apply_affine(np.linalg.inv(result), pts)
    else:
        found = result.to_moving(pts)
    expected = frames.apply_affine(np.linalg.inv(np.asarray(truth, float)), pts)
    return float(np.linalg.norm(found - expected, axis=1).mean())


def lightsheet_like(
    template: Volume,
    spacing_mm=(0.2, 0.16, 0.125),
    code: str = "PIR",
    offset_mm=(0, 0, 0),
) -> tuple[Volume, SimulatedBrain]:
    """A real-looking sample: the simulated brain on an anisotropic grid in ``code`` order,
    as uint16 with a light-sheet-like range (up to ~10,000), placed ``offset_mm`` away.

    Returns ``(volume, sim)``; ``sim.truth`` still maps the sample onto the atlas when
    ``offset_mm`` is zero.
    """
    sim = simulate_brain(template)
    grid = lightsheet_grid(sim, spacing_mm, code)
    volume = grid.with_data(lightsheet_values(sim, grid), name="light-sheet sample")
    volume = Volume(volume.data, volume.affine, volume.name, "RAS", {"orientation": code})
    return volume.transformed(_shift(np.asarray(offset_mm, float)), name="light-sheet sample"), sim


def lightsheet_grid(sim: SimulatedBrain, spacing_mm, code: str = "PIR") -> Volume:
    """A grid (no data) in ``code`` order with ``spacing_mm`` over the simulated brain's box."""
    lo = sim.volume.index_to_world(np.zeros(3))
    hi = sim.volume.index_to_world(np.asarray(sim.volume.shape) - 1.0)
    box_lo, box_hi = np.minimum(lo, hi), np.maximum(lo, hi)
    code_axes = ["RAS".index(frames.world_axes_of(c)) for c in code]
    size = (box_hi - box_lo)[code_axes]
    shape = tuple(int(n) for n in np.floor(size / np.asarray(spacing_mm)) + 1)
    affine = frames.orientation_affine(code, spacing_mm)
    corner = frames.apply_affine(affine, np.zeros(3))  # put the grid's box on the brain's box
    far = frames.apply_affine(affine, np.asarray(shape) - 1.0)
    return Volume.grid(shape, _shift(box_lo - np.minimum(corner, far)) @ affine, "grid", "RAS")


def lightsheet_values(sim: SimulatedBrain, grid: Volume) -> np.ndarray:
    """The simulated brain sampled on ``grid`` (or a slab of it), uint16 up to ~10,868."""
    from napari_ccf_align.core import align

    values = align.resample(grid, sim.volume, frames.RigidParams().sitk_transform()).data
    top = max(float(np.max(sim.volume.data)), 1e-6)
    return (np.clip(values / top, 0, None) * 10_868).astype(np.uint16)


def _shift(t) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = t
    return m
