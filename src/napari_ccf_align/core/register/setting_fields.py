"""Every setting a registration run uses: its command-line flag, its Register-form label,
its default and its help, in one table the CLI and the form both read.

Light on purpose (no numpy, SimpleITK or DIPY), like :mod:`.methods`, so that
``napari-ccf-align register --help`` shows every default without loading an engine. The
defaults here are what ``--help`` and the form show; :class:`~.rigid.RigidSettings` and
:class:`~.syn.SynSettings` hold the ones a run uses, and ``tests/test_setting_fields.py``
checks that the two agree and that every field of both has an entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from napari_ccf_align.core.register.methods import (
    DEFAULT_RIGID_ITERATIONS,
    DEFAULT_SYN_LEVEL_ITERS,
    DEFAULT_SYN_RADIUS,
    DEFAULT_SYN_SIGMA_DIFF,
    DEFAULT_SYN_STEP,
    DEFAULT_WORKING_RESOLUTION_UM,
    format_level_iters,
)

#: The kinds of value a setting takes, which say how its flag and its form field read it.
KINDS = ("int", "float", "choice", "switch", "levels", "level_iters", "percentiles")


@dataclass(frozen=True)
class Setting:
    """One setting of a run.

    Attributes
    ----------
    name : str
        The field's name on the settings class(es) of ``stages``.
    stages : tuple of {"rigid", "syn"}
        Which settings carry it: ``"rigid"`` is :class:`~.rigid.RigidSettings` (the
        SimpleITK stages), ``"syn"`` is :class:`~.syn.SynSettings`; a setting of both is
        given once and used by both.
    flag : str
        Its ``register`` flag.
    label : str
        Its label in the Register form.
    help : str
        What it does, with its unit.
    default : object
        Its default, as ``--help`` and the form show it.
    kind : str
        One of :data:`KINDS`.
    choices : tuple of str
        The values a ``"choice"`` takes.
    """

    name: str
    stages: tuple[str, ...]
    flag: str
    label: str
    help: str
    default: object
    kind: str
    choices: tuple[str, ...] = ()

    def shown_default(self) -> str:
        """The default as text: ``"0.5 99.5"``, ``"off"``, ``"40,20,5"``."""
        d = self.default
        if self.kind == "switch":
            return "on" if d else "off"
        if isinstance(d, tuple):
            return " ".join(f"{v:g}" for v in d)
        if isinstance(d, float):
            return f"{d:g}"
        return str(d)


_BOTH = ("rigid", "syn")

#: The settings in the order the form and ``--help`` give them. ``RigidSettings.transform``
#: is not here: the method (``--method``, the form's method) sets it.
# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting("metric", ("rigid",), "--metric", "metric",
            "similarity measure of the SimpleITK stages: Mattes mutual information, "
            "normalised correlation, mean squares, or ANTS neighbourhood correlation (which "
            "reads every voxel: sampling 'none')",
            "mattes", "choice", ("mattes", "correlation", "mean_squares", "ants_nc")),
    Setting("iterations", ("rigid",), "--iterations", "iterations per level",
            "most SimpleITK optimiser iterations per level", DEFAULT_RIGID_ITERATIONS, "int"),
    Setting("levels", ("rigid",), "--levels", "levels (shrink:mm)",
            "SimpleITK levels, coarse first, as shrink factor:smoothing sigma (mm)",
            "4:0.4, 2:0.2, 1:0", "levels"),
    Setting("bins", ("rigid",), "--bins", "histogram bins",
            "histogram bins of Mattes mutual information", 32, "int"),
    Setting("sampling", ("rigid",), "--sampling", "sampling",
            "which voxels the metric reads: a random or regular sample, or every voxel ('none')",
            "random", "choice", ("random", "regular", "none")),
    Setting("sampling_fraction", ("rigid",), "--sampling-fraction", "sampled fraction",
            "fraction (0-1] of the voxels the metric samples", 0.2, "float"),
    Setting("max_samples", ("rigid",), "--max-samples", "most samples per level",
            "at most this many metric samples per level (the metric's precision depends on "
            "the number of samples, not on the resolution)", 20_000, "int"),
    Setting("optimizer", ("rigid",), "--optimizer", "optimiser",
            "regular-step gradient descent, or gradient descent with an estimated learning "
            "rate", "regular_step", "choice", ("regular_step", "gradient_descent")),
    Setting("learning_rate", ("rigid",), "--learning-rate", "learning rate",
            "the optimiser's first step (regular step: the largest step, mm of shift)",
            0.5, "float"),
    Setting("min_step", ("rigid",), "--min-step", "minimum step",
            "regular-step gradient descent stops below this step", 1e-4, "float"),
    Setting("ants_radius", ("rigid",), "--ants-radius", "ANTS radius (voxels)",
            "neighbourhood radius of ANTS neighbourhood correlation (voxels)", 2, "int"),
    Setting("clip_percentiles", _BOTH, "--clip", "clip (percentiles)",
            "intensities are clipped to these low and high percentiles, then scaled to "
            "[0, 1], in every stage (a saturated spot then cannot dominate)",
            (0.5, 99.5), "percentiles"),
    Setting("bias_correction", _BOTH, "--n4", "correct the bias field first (N4)",
            "correct the sample's smooth bias field (N4) before registering (off: it did not "
            "raise Dice on real templates)", False, "switch"),
    Setting("match_histogram", _BOTH, "--match-histogram", "match the atlas's histogram first",
            "match the sample's intensity histogram to the atlas's before registering",
            False, "switch"),
    Setting("seed", ("rigid",), "--seed", "random seed",
            "seed of the metric's random sampling; given on the command line, it also sums the "
            "metric on one thread (--threads 1), so that a replay is bit-identical", 42, "int"),
    Setting("threads", ("rigid",), "--threads", "threads (0: every core; 1: bit-identical)",
            "threads of the metric's sums: 0 uses every core (replays then differ in the last "
            "digits), 1 gives bit-identical replays", 0, "int"),
    Setting("level_iters", ("syn",), "--syn-iterations", "SyN iterations (coarse → fine)",
            "most SyN iterations per level, coarsest first",
            format_level_iters(DEFAULT_SYN_LEVEL_ITERS).replace(" ", ""), "level_iters"),
    Setting("working_resolution_um", ("syn",), "--syn-resolution", "SyN working resolution (µm)",
            "grid spacing SyN works at (µm); an --atlas-file's own when that is coarser",
            DEFAULT_WORKING_RESOLUTION_UM, "float"),
    Setting("metric", ("syn",), "--syn-metric", "SyN metric",
            "SyN's similarity measure: local cross-correlation, squared differences, or "
            "expectation maximisation", "cc", "choice", ("cc", "ssd", "em")),
    Setting("radius", ("syn",), "--syn-radius", "SyN CC radius (voxels)",
            "neighbourhood radius of SyN's cross-correlation (voxels of each level)",
            DEFAULT_SYN_RADIUS, "int"),
    Setting("sigma_diff", ("syn",), "--syn-sigma-diff", "SyN smoothing σ (voxels)",
            "Gaussian smoothing of SyN's update field (voxels of each level)",
            DEFAULT_SYN_SIGMA_DIFF, "float"),
    Setting("step_length", ("syn",), "--syn-step", "SyN step (voxels)",
            "SyN's largest displacement per iteration (voxels of each level)",
            DEFAULT_SYN_STEP, "float"),
    Setting("opt_tol", ("syn",), "--syn-tolerance", "SyN convergence tolerance",
            "a SyN level stops once its energy's fitted slope falls below this", 1e-5, "float"),
    Setting("energy_window", ("syn",), "--syn-window", "SyN convergence window (iterations)",
            "iterations the energy's slope is fitted over; a level with fewer iterations only "
            "stops at its cap", 12, "int"),
    Setting("ss_sigma_factor", ("syn",), "--syn-scale-factor", "SyN scale-space factor",
            "smoothing of each SyN level: sigma = factor x 2**level (voxels)", 0.2, "float"),
    Setting("inv_iter", ("syn",), "--syn-inversion-iterations", "SyN inversion iterations",
            "most iterations of each field inversion", 20, "int"),
    Setting("inv_tol", ("syn",), "--syn-inversion-tolerance", "SyN inversion tolerance (voxels)",
            "a field inversion stops at this mean residual (voxels); DIPY's 0.001, as a looser "
            "one folded a large deformation", 1e-3, "float"),
)
# fmt: on


def setting(name: str, stage: str) -> Setting:
    """The entry of field ``name`` of the ``stage`` settings ("rigid" or "syn")."""
    for s in SETTINGS:
        if s.name == name and stage in s.stages:
            return s
    raise KeyError(f"no setting {name!r} of the {stage} stage")
