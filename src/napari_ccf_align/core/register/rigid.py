"""SimpleITK engine: rigid, similarity and affine registration of a volume to the atlas.

:func:`register` is a plain function: volumes, an :class:`AlignmentState` to start
from, :class:`RigidSettings`, a progress callback and a cancel token. It never
touches Qt. SimpleITK releases the GIL during ``Execute``; the iteration
callback runs on the calling (worker) thread.

Defaults were chosen by measurement (``benchmarks/bench_rigid.py``, figures in
``docs/benchmarks.md``): intensities clipped to percentiles and scaled to [0, 1],
Mattes mutual information with 32 bins on a 20 % random sample, regular-step
gradient descent (learning rate 0.5, minimum step 1e-4) with physical-shift scales,
three levels (shrink 4, 2, 1; smoothing 0.4, 0.2, 0 mm).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import checks, frames
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import RegistrationError, SettingsError
from napari_ccf_align.core.progress import (
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    TracePoint,
    ignore_progress,
)
from napari_ccf_align.core.register.methods import DEFAULT_RIGID_ITERATIONS
from napari_ccf_align.core.register.prepare import overlap_fraction, prepare
from napari_ccf_align.core.register.result import warp_through, warp_through_matrix
from napari_ccf_align.core.volume import Volume, block_factors, block_mean, to_sitk

TransformKind = frames.TransformKind
Metric = Literal["mattes", "correlation", "mean_squares", "ants_nc"]
Sampling = Literal["random", "regular", "none"]
Optimizer = Literal["regular_step", "gradient_descent"]

TRANSFORMS: tuple[str, ...] = ("rigid", "similarity", "affine")
METRICS: tuple[str, ...] = ("mattes", "correlation", "mean_squares", "ants_nc")
SAMPLINGS: tuple[str, ...] = ("random", "regular", "none")
OPTIMIZERS: tuple[str, ...] = ("regular_step", "gradient_descent")


@dataclass(frozen=True)
class Level:
    """One resolution level: shrink factor (voxels) and Gaussian smoothing sigma (mm)."""

    shrink: int
    sigma_mm: float


def _levels(levels: object) -> tuple[Level, ...]:
    """Levels from :class:`Level` objects or ``(shrink, sigma_mm)`` pairs, checked."""
    try:
        pairs = [(lv.shrink, lv.sigma_mm) if isinstance(lv, Level) else tuple(lv) for lv in levels]
    except TypeError:
        pairs = [()]
    if not pairs or any(len(p) != 2 for p in pairs):
        raise SettingsError(
            f"The levels {levels!r} are not (shrink, smoothing mm) pairs: give e.g. "
            "((4, 0.4), (2, 0.2), (1, 0))."
        )
    return tuple(
        Level(
            checks.number(shrink, "shrink factor of a level", 1, 64, integer=True),
            checks.number(sigma, "smoothing of a level (mm)", 0, 10),
        )
        for shrink, sigma in pairs
    )


def _percentiles(pair: object) -> tuple[float, float]:
    """Two ordered percentiles within [0, 100]."""
    try:
        lo, hi = pair
    except (TypeError, ValueError):
        raise SettingsError(
            f"The clip percentiles {pair!r} are not a (low, high) pair: give e.g. (0.5, 99.5)."
        ) from None
    lo = checks.number(lo, "lower clip percentile", 0, 100)
    hi = checks.number(hi, "upper clip percentile", 0, 100)
    if lo >= hi:
        raise SettingsError(
            f"The clip percentiles ({lo:g}, {hi:g}) are not in order: the lower must be below "
            "the upper, e.g. (0.5, 99.5)."
        )
    return lo, hi


@dataclass(frozen=True)
class RigidSettings:
    """Parameters of one SimpleITK registration run (immutable; make a new one to change).

    Parameters
    ----------
    transform : {"rigid", "similarity", "affine"}
        Transform optimised: Euler 3D (6 parameters), similarity (7) or affine (12).
    metric : {"mattes", "correlation", "mean_squares", "ants_nc"}
        Mattes mutual information, normalised correlation, mean squares or ANTS
        neighbourhood correlation.
    bins : int
        Histogram bins of Mattes mutual information.
    ants_radius : int
        Neighbourhood radius (voxels) of ANTS neighbourhood correlation.
    sampling : {"random", "regular", "none"}
        Metric sampling strategy ("none" = every voxel).
    sampling_fraction : float
        Fraction of voxels sampled (0-1] ...
    max_samples : int
        ... but at most this many per level (the metric's precision depends on the
        number of samples, not on the resolution; the fine levels get faster).
    levels : tuple of Level
        Coarse to fine resolution levels.
    iterations : int
        Most optimiser iterations per level.
    optimizer : {"regular_step", "gradient_descent"}
        Regular-step gradient descent or gradient descent with an estimated
        learning rate and a convergence window.
    learning_rate : float
        Initial step (regular step: largest step in physical-shift scaled units, mm).
    min_step : float
        Regular-step gradient descent stops below this step.
    clip_percentiles : (float, float)
        Intensities are clipped to these percentiles, then scaled to [0, 1].
    seed : int
        Seed of the random sampling, so runs are repeatable.
    bias_correction, match_histogram : bool
        N4 bias-field correction of the sample and matching its histogram to the atlas's,
        before the clipping (:mod:`.intensity`; off by default, as measured).
    threads : int
        Threads for the metric's sums; 0 (the default) uses every core, and then two runs
        differ in the last digits (the sums add up in another order). 1 gives bit-identical
        replays.
    """

    transform: TransformKind = "rigid"
    metric: Metric = "mattes"
    bins: int = 32
    ants_radius: int = 2
    sampling: Sampling = "random"
    sampling_fraction: float = 0.2
    max_samples: int = 20_000
    levels: tuple[Level, ...] = (Level(4, 0.4), Level(2, 0.2), Level(1, 0.0))
    iterations: int = DEFAULT_RIGID_ITERATIONS
    optimizer: Optimizer = "regular_step"
    learning_rate: float = 0.5
    min_step: float = 1e-4
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    seed: int = 42
    threads: int = 0
    bias_correction: bool = False
    match_histogram: bool = False

    def __post_init__(self) -> None:
        checks.choice(self.transform, "transform", TRANSFORMS)
        checks.choice(self.metric, "metric", METRICS)
        checks.choice(self.sampling, "sampling", SAMPLINGS)
        checks.choice(self.optimizer, "optimizer", OPTIMIZERS)
        if self.metric == "ants_nc" and self.sampling != "none":
            raise SettingsError(
                "ANTS neighbourhood correlation works on every voxel, not on a sample: set "
                "sampling to 'none' (or choose another metric)."
            )
        checks.number(self.bins, "number of histogram bins", 4, 1024, integer=True)
        checks.number(self.ants_radius, "ANTS radius (voxels)", 1, 50, integer=True)
        checks.number(self.sampling_fraction, "sampling fraction", 0, 1, lo_open=True)
        checks.number(self.max_samples, "most samples per level", 100, integer=True)
        checks.number(self.iterations, "number of iterations per level", 1, 100_000, integer=True)
        checks.number(self.learning_rate, "learning rate", 0, lo_open=True, example="0.5")
        checks.number(self.min_step, "minimum step", 0, lo_open=True, example="1e-4")
        checks.number(self.seed, "random seed", 0, 2**31 - 1, integer=True)
        checks.number(self.threads, "number of threads (0: every core)", 0, 1024, integer=True)
        object.__setattr__(self, "levels", _levels(self.levels))
        object.__setattr__(self, "clip_percentiles", _percentiles(self.clip_percentiles))

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["levels"] = [[lv.shrink, lv.sigma_mm] for lv in self.levels]
        d["clip_percentiles"] = list(self.clip_percentiles)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> RigidSettings:
        """Inverse of :meth:`to_dict` (unknown keys are refused with their names)."""
        return cls(**checks.known_keys(data, tuple(cls.__dataclass_fields__), "Engine settings"))


@dataclass(frozen=True)
class RigidResult:
    """What a registration produced.

    Attributes
    ----------
    transform : SimpleITK.Transform
        Fixed (atlas) -> moving map in LPS, ITK's resampling direction; use it to
        warp the moving volume onto the atlas grid.
    matrix : numpy.ndarray
        4 x 4 RAS world map from the moving volume to the atlas (the inverse, in RAS).
    params : RigidParams or None
        The rigid result as parameters (for rigid runs).
    trace : tuple of TracePoint
        Metric per iteration and level.
    stop_reason : str
        SimpleITK's stop condition of the last level.
    final_metric : float
        Metric value at the end.
    seconds : float
        Wall time of the optimisation.
    settings : RigidSettings
        The settings used.
    """

    transform: sitk.Transform
    matrix: np.ndarray
    params: frames.RigidParams | None
    trace: tuple[TracePoint, ...]
    stop_reason: str
    final_metric: float
    seconds: float
    settings: RigidSettings = field(repr=False)

    @property
    def method(self) -> str:
        """The transform optimised: "rigid", "similarity" or "affine"."""
        return self.settings.transform

    @property
    def deformable(self) -> bool:
        """False: ``matrix`` is the whole map."""
        return False

    @property
    def linear_stage(self) -> RigidResult:
        """This result: it is its own linear stage."""
        return self

    def warp(self, fixed: Volume, moving: Volume, labels: bool = False) -> Volume:
        """The moving volume on the atlas grid ``fixed`` (linear, or nearest for ``labels``).

        Sampled as the Align previews are (SimpleITK's linear rules, integers rounded to
        nearest) through ``matrix``, the RAS form of ``transform``; so a preview and a
        result of the same map agree voxel for voxel.
        """
        return warp_through_matrix(fixed, moving, self.matrix, labels)

    def warp_to_sample(self, atlas_image: Volume, moving: Volume, labels: bool = True) -> Volume:
        """An atlas-space image (e.g. the annotation) on the sample's grid ``moving``."""
        return warp_through(atlas_image, moving, "sample", self.matrix, np.eye(4), labels=labels)

    @property
    def field_grid(self) -> None:
        """None: a linear result has no field."""
        return None

    def deformation(self, grid: Volume) -> None:
        """None: there is no deformation beyond ``matrix``."""
        return None

    def to_moving(self, atlas_points: np.ndarray) -> np.ndarray:
        """Sample-world points (RAS mm) shown at atlas-world points ``(..., 3)``."""
        return frames.apply_affine(np.linalg.inv(self.matrix), atlas_points)

    def to_atlas(self, sample_points: np.ndarray) -> np.ndarray:
        """Atlas-world points (RAS mm) where sample-world points ``(..., 3)`` land."""
        return frames.apply_affine(self.matrix, sample_points)


# --------------------------------------------------------------------------- the engine


def _extent(volume: Volume) -> str:
    """``'6.6 × 5.0 × 9.1 mm across'``: a volume's size along its array axes."""
    size = np.asarray(volume.shape) * volume.spacing
    return " × ".join(f"{v:.2g}" for v in size) + " mm across"


#: The finest grid the linear stages work on (mm): a finer atlas is averaged in whole-voxel
#: blocks to at most this. SimpleITK holds both images in float32 and the sample's gradient
#: in float64 (about 32 bytes per atlas voxel): 38 GB on the 10 µm atlas, 5 GB on its 20 µm
#: blocks, and a linear map found on 20 µm voxels is exact far below a 10 µm voxel.
LINEAR_FINEST_MM = 0.025


def linear_grid(fixed: Volume, mask: Volume | None = None) -> tuple[Volume, Volume | None]:
    """``(fixed, mask)`` averaged to at most :data:`LINEAR_FINEST_MM` when finer (as they
    are otherwise); a mask stays a mask (more than half of a block)."""
    factors = block_factors(fixed, (LINEAR_FINEST_MM,) * fixed.ndim)
    if all(f == 1 for f in factors) or float(np.min(fixed.spacing)) >= LINEAR_FINEST_MM:
        return fixed, mask
    coarse = block_mean(fixed, factors)
    if mask is not None:
        share = block_mean(mask.with_data((np.asarray(mask.data) > 0).astype(np.float32)), factors)
        mask = share.with_data((np.asarray(share.data) > 0.5).astype(np.uint8))
    return coarse, mask


def register(
    fixed: Volume,
    moving: Volume,
    state: AlignmentState | None = None,
    settings: RigidSettings | None = None,
    fixed_mask: Volume | None = None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    start: np.ndarray | None = None,
) -> RigidResult:
    """Register ``moving`` to ``fixed`` (the atlas) starting from the user's alignment.

    Parameters
    ----------
    fixed : Volume
        Atlas template (RAS).
    moving : Volume
        The user's volume, in its own frame.
    state : AlignmentState, optional
        Initial alignment and crop (default: identity, no crop).
    settings : RigidSettings, optional
        Engine parameters (default: :class:`RigidSettings`).
    fixed_mask : Volume, optional
        Non-zero where the metric may sample the atlas.
    on_progress : callable
        Receives :class:`ProgressEvent` per iteration and level.
    cancel : CancelToken, optional
        Stops every level; then :class:`Cancelled` is raised.
    start : numpy.ndarray, optional
        4 x 4 moving -> atlas map (RAS mm) to start from instead of ``state.rigid``,
        e.g. an earlier result's ``matrix`` (so rigid -> affine chains); the
        state's crop still applies.

    Raises
    ------
    RegistrationError
        No overlap, empty mask, too few samples, diverged (NaN) metric.
    Cancelled
        When ``cancel`` was set.
    """
    state = state or AlignmentState()
    settings = settings or RigidSettings()
    cancel = cancel or CancelToken()
    for v in (fixed, moving):
        if v.ndim != 3:
            raise RegistrationError(
                f"{v.name!r} is {v.ndim}D: the SimpleITK engine registers 3D volumes."
            )
    fixed, fixed_mask = linear_grid(fixed, fixed_mask)
    inputs = prepare(
        fixed,
        moving,
        state,
        settings.clip_percentiles,
        fixed_mask,
        start,
        settings.bias_correction,
        settings.match_histogram,
    )
    overlap = overlap_fraction(inputs.fixed, inputs.moving, inputs.start)
    if overlap < 0.05:
        raise RegistrationError(
            f"The atlas and your volume hardly overlap after the initial alignment ("
            f"{100 * overlap:.0f} % of the atlas's tissue falls inside {moving.name!r}, "
            f"{_extent(moving)}): check its voxel size and orientation, centre it on the atlas "
            "(Align widget, or leave out --no-centre), then run again."
        )
    initial = frames.itk_start_transform(inputs.start, inputs.centre_mm, settings.transform)
    fixed_img = to_sitk(inputs.fixed)
    moving_img = to_sitk(inputs.moving)

    reg = sitk.ImageRegistrationMethod()
    _set_metric(reg, settings, int(np.prod(fixed.shape)))
    if inputs.fixed_mask is not None:
        reg.SetMetricFixedMask(to_sitk(inputs.fixed_mask, np.uint8))
    if inputs.moving_mask is not None:
        reg.SetMetricMovingMask(to_sitk(inputs.moving_mask, np.uint8))
    _set_optimizer(reg, settings)
    reg.SetShrinkFactorsPerLevel([lv.shrink for lv in settings.levels])
    reg.SetSmoothingSigmasPerLevel([lv.sigma_mm for lv in settings.levels])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInterpolator(sitk.sitkLinear)
    if settings.sampling != "none":
        # with a few thousand samples, gradients at the samples beat whole gradient images
        reg.MetricUseMovingImageGradientFilterOff()
        reg.MetricUseFixedImageGradientFilterOff()
    reg.SetInitialTransform(initial, inPlace=True)

    trace: list[TracePoint] = []
    t0 = time.perf_counter()
    n_levels = len(settings.levels)

    def on_iteration():
        if cancel.cancelled:
            reg.StopRegistration()
            return
        level = reg.GetCurrentLevel()
        it = reg.GetOptimizerIteration()
        value = reg.GetMetricValue()
        elapsed = time.perf_counter() - t0
        trace.append(TracePoint(level, it, value, elapsed, "register"))
        on_progress(
            ProgressEvent(
                "register",
                done=level * settings.iterations + it,
                total=n_levels * settings.iterations,
                message=f"level {level + 1}/{n_levels}, iteration {it}, metric {value:.5f}",
                level=level,
                iteration=it,
                metric=value,
                elapsed_s=elapsed,
            )
        )

    def on_level():
        if cancel.cancelled:
            reg.StopRegistration()

    reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
    reg.AddCommand(sitk.sitkMultiResolutionIterationEvent, on_level)
    try:
        with _threads(settings.threads):
            reg.Execute(fixed_img, moving_img)
    except RuntimeError as exc:
        raise _explain(exc) from None
    cancel.raise_if_cancelled("The registration")
    seconds = time.perf_counter() - t0
    final = reg.GetMetricValue()
    if not math.isfinite(final) or not np.all(np.isfinite(initial.GetParameters())):
        raise RegistrationError(
            "The optimiser diverged (the metric became NaN): lower the learning rate or improve "
            "the initial alignment, then run again."
        )
    # the optimised map is of the mirrored volume; the result maps the user's volume
    lps = frames.sitk_transform_matrix(initial)  # fixed -> prepared moving, LPS
    matrix = inputs.unflipped(np.linalg.inv(frames.world_matrix_to_lps(lps)))
    if np.linalg.det(matrix[:3, :3]) < 0:
        fixed_to_moving = frames.world_matrix_to_lps(np.linalg.inv(matrix))
        transform = frames.sitk_affine_transform(fixed_to_moving, initial.GetCenter())
    else:
        transform = initial
    params = None
    if settings.transform == "rigid":
        params = frames.RigidParams.from_matrix(matrix, state.rigid.centre_mm)
    return RigidResult(
        transform,
        matrix,
        params,
        tuple(trace),
        reg.GetOptimizerStopConditionDescription(),
        float(final),
        seconds,
        settings,
    )


def _sampling_per_level(s: RigidSettings, n_voxels: int) -> list[float]:
    """Sampled fraction at each level: ``sampling_fraction``, capped at ``max_samples``."""
    out = []
    for lv in s.levels:
        n_level = max(1.0, n_voxels / float(lv.shrink) ** 3)
        out.append(float(min(s.sampling_fraction, max(s.max_samples / n_level, 1e-4))))
    return out


def _set_metric(reg: sitk.ImageRegistrationMethod, s: RigidSettings, n_voxels: int) -> None:
    if s.metric == "mattes":
        reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=s.bins)
    elif s.metric == "correlation":
        reg.SetMetricAsCorrelation()
    elif s.metric == "mean_squares":
        reg.SetMetricAsMeanSquares()
    else:
        reg.SetMetricAsANTSNeighborhoodCorrelation(s.ants_radius)
    if s.sampling == "random":
        reg.SetMetricSamplingStrategy(reg.RANDOM)
    elif s.sampling == "regular":
        reg.SetMetricSamplingStrategy(reg.REGULAR)
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    if s.sampling != "none":
        reg.SetMetricSamplingPercentagePerLevel(_sampling_per_level(s, n_voxels), s.seed)


@contextlib.contextmanager
def _threads(n: int):
    """SimpleITK's default thread count set to ``n`` for a block (0: leave it). The metric's
    sums follow the global default, not the registration object's own setting (measured:
    ``SetNumberOfThreads(1)`` alone left replays differing in the 9th digit)."""
    if not n:
        yield
        return
    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def _set_optimizer(reg: sitk.ImageRegistrationMethod, s: RigidSettings) -> None:
    if s.optimizer == "regular_step":
        reg.SetOptimizerAsRegularStepGradientDescent(
            learningRate=s.learning_rate,
            minStep=s.min_step,
            numberOfIterations=s.iterations,
            relaxationFactor=0.5,
            gradientMagnitudeTolerance=1e-8,
        )
    else:
        reg.SetOptimizerAsGradientDescent(
            learningRate=s.learning_rate,
            numberOfIterations=s.iterations,
            convergenceMinimumValue=1e-6,
            convergenceWindowSize=10,
            estimateLearningRate=reg.EachIteration,
        )
    reg.SetOptimizerScalesFromPhysicalShift()


def _explain(exc: RuntimeError) -> RegistrationError:
    text = str(exc)
    if "samples" in text.lower() or "outside" in text.lower():
        return RegistrationError(
            "Too few samples of the atlas fall inside your volume (or its mask): check the "
            "initial alignment and the crop, or raise the sampling fraction."
        )
    detail = next(
        (ln.split("Description:")[-1].strip() for ln in text.splitlines() if "Description" in ln),
        text.strip().splitlines()[-1] if text.strip() else "",
    )
    return RegistrationError(f"SimpleITK stopped with an error ({detail[:200]}): check the inputs.")


def parse_levels(text: str) -> tuple[Level, ...]:
    """Levels from text such as ``"4:0.4, 2:0.2, 1:0"`` (shrink:smoothing mm, coarse first)."""
    levels = []
    for part in text.replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            shrink, sigma = part.split(":")
            levels.append(Level(int(shrink), float(sigma)))
        except ValueError:
            raise RegistrationError(
                f"Level {part.strip()!r} is not 'shrink:smoothing': write e.g. '4:0.4, 2:0.2, 1:0'."
            ) from None
    if not levels:
        raise RegistrationError("No levels given: write e.g. '4:0.4, 2:0.2, 1:0'.")
    return tuple(levels)


def format_levels(levels: tuple[Level, ...]) -> str:
    """Inverse of :func:`parse_levels`."""
    return ", ".join(f"{lv.shrink}:{lv.sigma_mm:g}" for lv in levels)
