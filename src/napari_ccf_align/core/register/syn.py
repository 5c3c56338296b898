"""DIPY engine: Symmetric Normalization (SyN) after the rigid or affine stage.

:func:`register` is a plain function like :func:`.rigid.register`: volumes, the
alignment state (for the crop), the start map (a rigid/affine result's ``matrix``,
which already holds the hand alignment), :class:`SynSettings`, a progress callback
and a cancel token. It never touches Qt. DIPY's loop is Python: it holds the GIL
between its compiled kernels.

Frames. The deformation lives in the atlas frame (RAS mm, on the working grid):
an atlas point ``x`` shows the sample at ``inv(matrix) @ (x + u(x))`` (``u`` =
:attr:`SynResult.forward`), so the composed map is "rigid/affine, then SyN"; a
sample point ``y`` lands at the atlas point ``z + v(z)`` with ``z = matrix @ y``
(``v`` = :attr:`SynResult.backward`). Both fields are read off DIPY's final map
point by point through its own formulas (``static_to_moving`` since DIPY 1.12;
``write_mapping`` would drop the prealign), so they do not depend on how DIPY
stores its maps internally.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from napari_ccf_align.core import checks, frames
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import Cancelled, CcfAlignError, RegistrationError, SettingsError
from napari_ccf_align.core.progress import (
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    TracePoint,
    ignore_progress,
)
from napari_ccf_align.core.register import syn_kernels, syn_pairs
from napari_ccf_align.core.register.methods import (
    DEFAULT_SYN_LEVEL_ITERS,
    DEFAULT_SYN_RADIUS,
    DEFAULT_SYN_SIGMA_DIFF,
    DEFAULT_SYN_STEP,
)
from napari_ccf_align.core.register.prepare import overlap_fraction, prepare
from napari_ccf_align.core.register.result import warp_through
from napari_ccf_align.core.sampling import field_at, over_grid
from napari_ccf_align.core.volume import Volume, block_factors, block_mean

SynMetric = Literal["cc", "ssd", "em"]
SYN_METRICS: tuple[str, ...] = ("cc", "ssd", "em")

#: Set (to anything) to let DIPY log its levels (``napari-ccf-align --verbose`` sets it).
VERBOSE_ENV = "CCF_ALIGN_VERBOSE"
#: Bytes of working memory per voxel of the working grid: ``benchmarks/bench_syn.py``
#: measured a peak of 276 (100 µm grid) and 241 (50 µm) bytes per voxel allocated by
#: numpy during a run (3D, CC metric); 420 leaves room for what numpy does not see.
BYTES_PER_VOXEL = 420


@dataclass(frozen=True)
class SynSettings:
    """Parameters of one DIPY SyN run (immutable; make a new one to change).

    Parameters
    ----------
    metric : {"cc", "ssd", "em"}
        Cross-correlation (within a neighbourhood), sum of squared differences,
        or expectation maximisation (for intensities related by a function).
    sigma_diff : float
        Gaussian smoothing of the metric's gradient (voxels of each level). 4 was
        measured best for CC on the 100 µm template (mean end-point error 0.36 voxel
        against 0.58 at DIPY's CC default of 2; ``benchmarks/bench_syn.py``); it is
        DIPY's default for SSD and EM.
    radius : int
        Neighbourhood radius of the CC metric, in voxels of each level.
    level_iters : tuple of int
        Most iterations per level, coarsest level first (its length is the number of levels).
    step_length : float
        Largest displacement of one update, in voxels of the level.
    opt_tol : float
        A level ends when the energy's estimated derivative falls below this.
    energy_window : int
        Iterations the derivative is fitted over (DIPY's rule). A level shorter than the
        window can only stop at its cap (DIPY's window is 12).
    inv_iter, inv_tol : int, float
        Most iterations of each field inversion, and the mean residual (voxels) it stops
        at (it also stops once no residual exceeds 0.1 voxel). 0.01 did a quarter less
        inversion work for the same Dice on real templates, but folded the circle-to-C
        phantom (``docs/benchmarks.md``), so it stays at DIPY's 0.001.
    ss_sigma_factor : float
        Scale-space smoothing: sigma = factor * 2**level (voxels).
    working_resolution_um : float or None
        Grid spacing (µm) SyN works at: the atlas is averaged in blocks down to it
        (e.g. 50 or 100); None = the atlas grid as given.
    clip_percentiles : (float, float)
        Intensities are clipped to these percentiles, then scaled to [0, 1].
    bias_correction, match_histogram : bool
        N4 bias-field correction of the sample and matching its histogram to the atlas's,
        before the clipping (:mod:`.intensity`; off by default, as measured).
    """

    metric: SynMetric = "cc"
    sigma_diff: float = DEFAULT_SYN_SIGMA_DIFF
    radius: int = DEFAULT_SYN_RADIUS
    level_iters: tuple[int, ...] = DEFAULT_SYN_LEVEL_ITERS
    step_length: float = DEFAULT_SYN_STEP
    opt_tol: float = 1e-5
    energy_window: int = 12
    inv_iter: int = 20
    inv_tol: float = 1e-3
    ss_sigma_factor: float = 0.2
    working_resolution_um: float | None = None
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    bias_correction: bool = False
    match_histogram: bool = False

    def __post_init__(self) -> None:
        checks.choice(self.metric, "SyN metric", SYN_METRICS)
        checks.number(self.sigma_diff, "SyN gradient smoothing (voxels)", 0, 20, lo_open=True)
        checks.number(self.radius, "CC radius (voxels)", 1, 20, integer=True)
        checks.number(
            self.energy_window, "SyN convergence window (iterations)", 3, 100, integer=True
        )
        try:
            iters = tuple(self.level_iters)
        except TypeError:
            iters = ()
        if not iters:
            raise SettingsError(
                f"The level iterations {self.level_iters!r} are not a list of whole numbers: "
                "give e.g. (40, 20, 10), coarsest level first."
            )
        iters = tuple(
            checks.number(n, "iterations of a level", 0, 10_000, integer=True) for n in iters
        )
        object.__setattr__(self, "level_iters", iters)
        checks.number(self.step_length, "SyN step length (voxels)", 0, 10, lo_open=True)
        checks.number(self.opt_tol, "SyN tolerance", 0, 1, lo_open=True)
        checks.number(self.inv_iter, "inversion iterations", 1, 1000, integer=True)
        checks.number(self.inv_tol, "inversion tolerance", 0, 1, lo_open=True)
        checks.number(self.ss_sigma_factor, "scale-space factor", 0, 10, lo_open=True)
        if self.working_resolution_um is not None:
            checks.number(self.working_resolution_um, "working resolution (µm)", 1, 1000)
        lo, hi = (checks.number(p, "clip percentile", 0, 100) for p in self.clip_percentiles)
        if lo >= hi:
            raise SettingsError(
                f"The clip percentiles ({lo:g}, {hi:g}) are not in order: give e.g. (0.5, 99.5)."
            )
        object.__setattr__(self, "clip_percentiles", (lo, hi))

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["level_iters"] = list(self.level_iters)
        d["clip_percentiles"] = list(self.clip_percentiles)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> SynSettings:
        """Inverse of :meth:`to_dict` (unknown keys are refused with their names)."""
        return cls(**checks.known_keys(data, tuple(cls.__dataclass_fields__), "SyN settings"))


@dataclass(frozen=True)
class SynResult:
    """What a SyN run produced (see the module docstring for the frames).

    Attributes
    ----------
    grid : Volume
        The working grid (geometry only), in the atlas's world (RAS mm).
    forward : numpy.ndarray
        ``(*grid.shape, ndim)`` float32, RAS mm: atlas point ``x`` shows the
        sample at ``inv(matrix) @ (x + forward(x))``.
    backward : numpy.ndarray
        ``(*grid.shape, ndim)`` float32, RAS mm: the sample point ``y`` lands at
        ``z + backward(z)``, ``z = matrix @ y``.
    matrix : numpy.ndarray
        The start: moving -> atlas world map (RAS mm) of the rigid/affine stage.
    trace : tuple of TracePoint
        Energy per iteration and level (level 0 = coarsest).
    final_metric : float
        The last energy (DIPY's, lower is better).
    seconds : float
        Wall time of the optimisation.
    stop_reason : str
        Why the last level ended.
    settings : SynSettings
        The settings used.
    linear : RigidResult or None
        The SimpleITK stage run before SyN by :func:`.pipeline.run` (its trace,
        settings and transform; the last one of several), or None when SyN started from
        a given map.
    recipe : str or None
        The method as the user named it, when it is more than ``linear``'s name + SyN.
    """

    grid: Volume
    forward: np.ndarray = field(repr=False)
    backward: np.ndarray = field(repr=False)
    matrix: np.ndarray
    trace: tuple[TracePoint, ...]
    final_metric: float
    seconds: float
    stop_reason: str
    settings: SynSettings = field(repr=False)
    linear: object | None = field(default=None, repr=False)
    recipe: str | None = None

    @property
    def method(self) -> str:
        """The recipe that made it (``"rigid+affine+syn"``), else ``"syn"`` after the linear
        stage's name when one ran first (``"affine+syn"``)."""
        if self.recipe is not None:
            return self.recipe
        return f"{self.linear.method}+syn" if self.linear is not None else "syn"

    @property
    def deformable(self) -> bool:
        """True: the map holds a deformation beyond ``matrix``."""
        return True

    @property
    def linear_stage(self):
        """The SimpleITK result SyN started from, or None when it started from a given map."""
        return self.linear

    def to_moving(self, atlas_points: np.ndarray) -> np.ndarray:
        """Sample-world points (RAS mm) shown at atlas-world points ``(..., ndim)``."""
        x = np.asarray(atlas_points, dtype=float)
        u = field_at(self.forward, self.grid, x, "itk")
        return frames.apply_affine(np.linalg.inv(self.matrix), x + u)

    def to_atlas(self, sample_points: np.ndarray) -> np.ndarray:
        """Atlas-world points (RAS mm) where sample-world points ``(..., ndim)`` land."""
        z = frames.apply_affine(self.matrix, np.asarray(sample_points, dtype=float))
        return z + field_at(self.backward, self.grid, z, "itk")

    def warp(self, fixed: Volume, moving: Volume, labels: bool = False) -> Volume:
        """The sample on the atlas grid ``fixed`` (linear, or nearest for ``labels``)."""
        after = np.linalg.inv(self.matrix)
        return warp_through(
            moving, fixed, "atlas", np.eye(fixed.ndim + 1), after, self.forward, self.grid, labels
        )

    def warp_to_sample(self, atlas_image: Volume, moving: Volume, labels: bool = True) -> Volume:
        """An atlas-space image (e.g. the annotation) on the sample's grid ``moving``.

        Nearest neighbour for ``labels`` (only existing label values), else linear.
        """
        return warp_through(
            atlas_image,
            moving,
            "sample",
            self.matrix,
            np.eye(moving.ndim + 1),
            self.backward,
            self.grid,
            labels,
        )

    @property
    def field_grid(self) -> Volume:
        """The working grid SyN's fields lie on (coarser than, or the same as, the atlas's)."""
        return self.grid

    def deformation(self, grid: Volume) -> np.ndarray:
        """The forward field beyond ``matrix`` on ``grid`` (RAS mm, ``(*grid.shape, ndim)``).

        Read by ITK's edge rule, in slabs, so no whole-grid float64 temporaries.
        """
        out = np.empty((*grid.shape, grid.ndim), np.float32)
        over_grid(grid, lambda world: field_at(self.forward, self.grid, world, "itk"), out)
        return out


def _grid_indices(shape: tuple[int, ...]) -> np.ndarray:
    return np.indices(shape, dtype=np.float64).reshape(len(shape), -1).T


# --------------------------------------------------------------------------- memory


def available_memory_bytes() -> int:
    """Memory the system can give without swapping (``MemAvailable``), or a large number."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def estimated_bytes(n_voxels: int) -> int:
    """Working memory of a SyN run on a grid of ``n_voxels`` (see :data:`BYTES_PER_VOXEL`)."""
    return int(n_voxels) * BYTES_PER_VOXEL


def held_bytes(fixed: Volume, moving: Volume, grid: Volume) -> int:
    """Bytes a SyN run holds beside its working grid's (:func:`estimated_bytes`).

    The moving volume averaged to about the grid's spacing (float32, with its tissue
    mask) and, at the end, the result warped onto the whole atlas grid (float32) with
    the atlas prepared for the figures. The inputs themselves are already in memory.
    """
    grid_voxel = float(np.prod(grid.spacing))
    moving_on_grid = min(
        float(np.prod(moving.shape)),
        float(np.prod(moving.shape)) * float(np.prod(moving.spacing)) / grid_voxel,
    )
    return int(8 * moving_on_grid + 8 * float(np.prod(fixed.shape)))


def check_memory(
    grid_shape: tuple[int, ...],
    spacing_um: float,
    available: int | None = None,
    held: int = 0,
) -> None:
    """Refuse a run that would not fit in memory, suggesting a working resolution that does.

    Parameters
    ----------
    grid_shape : tuple of int
        SyN's working grid (voxels).
    spacing_um : float
        Its spacing (µm).
    available : int, optional
        Free memory (bytes); default: what the system reports now.
    held : int
        Bytes the run holds that do not shrink with the working resolution
        (:func:`held_bytes`).
    """
    available = available_memory_bytes() if available is None else available
    grid_need = estimated_bytes(int(np.prod(grid_shape)))
    budget = 0.8 * available
    if grid_need + held <= budget:
        return
    if held >= 0.5 * budget:  # no working resolution helps: the result itself is too large
        raise RegistrationError(
            f"The run holds {held / 1e9:.1f} GB for your volume and the result on the atlas "
            f"grid alone, and {available / 1e9:.1f} GB are free: load the atlas at a coarser "
            "resolution, or free memory (close other programs)."
        )
    factor = (grid_need / (budget - held)) ** (1 / len(grid_shape))
    suggestion = next(
        (r for r in (25, 50, 100, 200) if r >= spacing_um * factor), int(spacing_um * factor) + 1
    )
    raise RegistrationError(
        f"SyN on a {'×'.join(map(str, grid_shape))} grid ({spacing_um:g} µm) needs about "
        f"{(grid_need + held) / 1e9:.1f} GB but {available / 1e9:.1f} GB are free: set the "
        f"working resolution to {suggestion} µm or coarser."
    )


# --------------------------------------------------------------------------- the engine


def check_working_resolution(fixed: Volume, resolution_um: float | None) -> None:
    """Refuse a working resolution finer than the atlas ``fixed`` (see :func:`working_grid`)."""
    if resolution_um is None:
        return
    atlas_um = float(np.min(fixed.spacing)) * 1000.0
    if resolution_um < atlas_um * (1 - 1e-6):
        raise SettingsError(
            f"The SyN working resolution {resolution_um:g} µm is finer than the atlas "
            f"({atlas_um:g} µm): choose {atlas_um:g} µm or coarser, or load the atlas at "
            f"{resolution_um:g} µm or finer."
        )


def working_grid(fixed: Volume, resolution_um: float | None) -> Volume:
    """The atlas averaged in whole-voxel blocks to about ``resolution_um`` (None: the atlas).

    Raises
    ------
    SettingsError
        If ``resolution_um`` is finer than the atlas: SyN cannot work on a grid finer than
        the atlas it was given (it would silently run, and be recorded, at the wrong one).
    """
    if resolution_um is None:
        return fixed
    check_working_resolution(fixed, resolution_um)
    factors = block_factors(fixed, [resolution_um / 1000.0] * fixed.ndim)
    if all(f == 1 for f in factors):
        return fixed
    return block_mean(fixed, factors)


def _metric(settings: SynSettings, ndim: int):
    from dipy.align.metrics import CCMetric, EMMetric, SSDMetric

    sigma = settings.sigma_diff
    if settings.metric == "cc":
        return CCMetric(ndim, sigma_diff=sigma, radius=settings.radius)
    if settings.metric == "ssd":
        return SSDMetric(ndim, smooth=sigma)
    return EMMetric(ndim, smooth=sigma)


def register(
    fixed: Volume,
    moving: Volume,
    start: np.ndarray,
    settings: SynSettings | None = None,
    state: AlignmentState | None = None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> SynResult:
    """SyN of ``moving`` to the atlas ``fixed``, starting from the moving -> atlas map ``start``.

    Parameters
    ----------
    fixed : Volume
        Atlas template (RAS), 2D or 3D.
    moving : Volume
        The user's volume in its own frame.
    start : numpy.ndarray
        ``(ndim + 1, ndim + 1)`` moving -> atlas world map (RAS mm): a rigid or
        affine result's ``matrix`` (hand alignment already inside; never compose
        it with the Align state again), or the identity.
    settings : SynSettings, optional
        Engine parameters.
    state : AlignmentState, optional
        Only its crop is used (cut, or masked by zeroing outside the box).
    on_progress : callable
        Receives a :class:`ProgressEvent` per iteration (stage ``"syn"``, energy as metric).
    cancel : CancelToken, optional
        Raises :class:`Cancelled` from DIPY's callback; nothing is kept.

    Raises
    ------
    RegistrationError
        No overlap, too little memory, or a failure inside DIPY.
    Cancelled
        When ``cancel`` was set.
    """
    from dipy.align.imwarp import (
        RegistrationStages,
        SymmetricDiffeomorphicRegistration,
        VerbosityLevels,
    )

    settings = settings or SynSettings()
    cancel = cancel or CancelToken()
    if not isinstance(fixed, Volume) or not isinstance(moving, Volume):
        raise RegistrationError("SyN registers two Volumes: give the atlas and your volume.")
    n = fixed.ndim
    start = frames.check_affine(start, n)
    grid = working_grid(fixed, settings.working_resolution_um)
    check_memory(
        grid.shape, float(np.min(grid.spacing)) * 1000.0, held=held_bytes(fixed, moving, grid)
    )
    state = state or AlignmentState()
    if n == 3:
        inputs = prepare(
            grid,
            moving,
            state,
            settings.clip_percentiles,
            start=start,
            bias_correction=settings.bias_correction,
            match_histogram=settings.match_histogram,
        )
        moving_image, flip, prealigned = inputs.moving, inputs.flip, inputs.start
        static = inputs.fixed
        if inputs.moving_mask is not None:
            moving_image = moving_image.with_data(moving_image.data * inputs.moving_mask.data)
    else:  # 2D: no crop or flips from a 3D alignment
        inputs = prepare(grid, moving, AlignmentState(), settings.clip_percentiles)
        static, moving_image, flip, prealigned = inputs.fixed, inputs.moving, np.eye(n + 1), start
    if overlap_fraction(static, moving_image, prealigned) < 0.05:
        raise RegistrationError(
            "The atlas and your volume hardly overlap at the start of SyN: run the rigid or "
            "affine stage first (or check the start map), then run SyN again."
        )

    trace: list[TracePoint] = []
    t0 = time.perf_counter()
    n_levels = len(settings.level_iters)
    total = sum(settings.level_iters)
    stop = {"reason": ""}

    paired: list = []  # syn_pairs' pairings, closed after the run

    def callback(sdr, stage) -> None:
        if cancel.cancelled:
            raise Cancelled("The SyN registration was cancelled; nothing was changed.")
        if stage == RegistrationStages.OPT_START and n == 3:  # DIPY has connected its kernels
            syn_kernels.install(sdr)
            paired.extend(syn_pairs.install(sdr, settings.metric == "cc"))
        if stage != RegistrationStages.ITER_END or not sdr.energy_list:
            return
        level = n_levels - 1 - int(sdr.current_level)  # 0 = coarsest
        it = int(sdr.niter)
        energy = float(sdr.energy_list[-1])
        elapsed = time.perf_counter() - t0
        trace.append(TracePoint(level, it, energy, elapsed, "syn"))
        done = sum(settings.level_iters[:level]) + it + 1
        on_progress(
            ProgressEvent(
                "syn",
                done=min(done, total),
                total=total,
                message=f"SyN level {level + 1}/{n_levels}, iteration {it + 1}, energy {energy:.4g}",
                level=level,
                iteration=it,
                metric=energy,
                elapsed_s=elapsed,
            )
        )
        cap = settings.level_iters[level]
        stop["reason"] = (
            f"Level {level + 1} reached its {cap} iterations."
            if it + 1 >= cap
            else f"Level {level + 1} converged after {it + 1} iterations."
        )

    sdr = SymmetricDiffeomorphicRegistration(
        _metric(settings, n),
        level_iters=list(settings.level_iters),
        step_length=settings.step_length,
        ss_sigma_factor=settings.ss_sigma_factor,
        opt_tol=settings.opt_tol,
        inv_iter=settings.inv_iter,
        inv_tol=settings.inv_tol,
        callback=callback,
    )
    sdr.energy_window = settings.energy_window  # DIPY keeps it as an attribute only
    if not os.environ.get(VERBOSE_ENV):  # DIPY logs every level at INFO; progress says it
        sdr.verbosity = VerbosityLevels.NONE
    prealign = frames.dipy_prealign(prealigned)
    try:
        mapping = sdr.optimize(
            np.asarray(static.data, np.float32),
            np.asarray(moving_image.data, np.float32),
            static_grid2world=static.affine,
            moving_grid2world=moving_image.affine,
            prealign=prealign,
        )
    except CcfAlignError:
        raise
    except (MemoryError, ValueError, RuntimeError) as exc:
        raise RegistrationError(
            f"DIPY's SyN stopped with an error ({type(exc).__name__}: {exc}): check the inputs, "
            "or choose a coarser working resolution."
        ) from None
    finally:
        for pair in paired:
            pair.close()
    cancel.raise_if_cancelled("The SyN registration")
    seconds = time.perf_counter() - t0
    forward, backward = _fields(mapping, grid, prealigned)
    if not (np.all(np.isfinite(forward)) and np.all(np.isfinite(backward))):
        raise RegistrationError(
            "SyN diverged (the displacement became NaN): lower the step length or improve the "
            "rigid/affine start, then run again."
        )
    final = trace[-1].metric if trace else math.nan
    return SynResult(
        Volume(
            np.broadcast_to(np.zeros((), np.uint8), grid.shape),
            grid.affine,
            "SyN grid",
            grid.world_axes,
        ),
        forward,
        backward,
        prealigned @ flip if n == 3 else start,
        tuple(trace),
        float(final),
        seconds,
        stop["reason"] or "No iteration ran (all level iterations are 0).",
        settings,
    )


def _dipy_point_maps(mapping, grid: Volume):
    """DIPY's own point maps of a DiffeomorphicMap: (static -> moving, moving -> static).

    From DIPY's warping formulas: the forward warp samples at ``P s + F(Dinv P s)``,
    the backward warp at ``Pinv (s + B(Dinv s))``; ``transform`` uses the forward
    warp unless the map is an inverse (``is_inverse``), ``transform_inverse`` the other.
    """
    n = grid.ndim
    p = np.eye(n + 1) if mapping.prealign is None else np.asarray(mapping.prealign, float)
    p_inv = np.linalg.inv(p)
    disp_grid = Volume.grid(
        mapping.forward.shape[:-1], mapping.disp_grid2world, "disp", grid.world_axes
    )
    fwd, bwd = np.asarray(mapping.forward), np.asarray(mapping.backward)

    def forward_warp(s: np.ndarray) -> np.ndarray:
        ps = frames.apply_affine(p, s)
        return ps + field_at(fwd, disp_grid, ps)

    def backward_warp(s: np.ndarray) -> np.ndarray:
        return frames.apply_affine(p_inv, s + field_at(bwd, disp_grid, s))

    if mapping.is_inverse:
        return backward_warp, forward_warp
    return forward_warp, backward_warp


def _fields(mapping, grid: Volume, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Our forward/backward fields (RAS mm, on ``grid``) from DIPY's final map, point by point.

    ``start`` maps the (prepared) moving volume to the atlas; the fields are what
    remains after it, in the atlas frame (see the module docstring).
    """
    n = grid.ndim
    x = grid.index_to_world(_grid_indices(grid.shape))
    to_moving, to_static = _dipy_point_maps(mapping, grid)
    shape = (*grid.shape, n)

    def forward() -> np.ndarray:
        return (frames.apply_affine(start, to_moving(x)) - x).reshape(shape).astype(np.float32)

    def backward() -> np.ndarray:
        moved = to_static(frames.apply_affine(np.linalg.inv(start), x))
        return (moved - x).reshape(shape).astype(np.float32)

    with ThreadPoolExecutor(1) as pool:  # SciPy's interpolation releases the GIL
        later = pool.submit(backward)
        return forward(), later.result()
