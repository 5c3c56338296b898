"""The registration methods by name, and the defaults and parsers the CLI and widgets share.

Light on purpose (no numpy, SimpleITK or DIPY), so ``napari-ccf-align --help`` and a
form can list the methods without loading an engine.
"""

from __future__ import annotations

from napari_ccf_align.core.errors import SettingsError

#: The methods, as (name, label) pairs: a linear stage, a linear stage then SyN, or SyN alone
#: (from a given start, e.g. the last result).
METHODS: tuple[tuple[str, str], ...] = (
    ("rigid", "rigid"),
    ("similarity", "similarity"),
    ("affine", "affine"),
    ("rigid+syn", "rigid → SyN"),
    ("affine+syn", "affine → SyN"),
    ("rigid+affine+syn", "rigid → affine → SyN (full)"),
    ("syn", "SyN (from the start given)"),
)

#: The method run unless another is chosen: the full recipe, which measured best on real
#: brains of other ages and modalities (docs/benchmarks.md); rigid+syn, which cannot recover a
#: global scale, scored mean Dice 0.685 against 0.783 on another lab's template.
DEFAULT_METHOD = "rigid+affine+syn"

#: What each method does, for ``register --help`` and the Register form's tooltip.
METHOD_HELP: dict[str, str] = {
    "rigid": "rotation and shift only (SimpleITK, Mattes MI): the brain keeps its size",
    "similarity": "rigid plus one scale: a brain that shrank or swelled evenly (cleared tissue)",
    "affine": "rigid plus scales and shears per axis",
    "rigid+syn": "rigid, then DIPY SyN: a smooth, invertible deformation on top",
    "affine+syn": "affine, then DIPY SyN: a global scale first, then the deformation",
    "rigid+affine+syn": "rigid, affine from it, then DIPY SyN (as ANTs' SyN recipe runs)",
    "syn": "DIPY SyN alone, from the start given (the last result, or the hand alignment)",
}


#: Most iterations per level of the SimpleITK stage, and of SyN's levels (coarsest first).
#: On real templates of other brains the SimpleITK stages' iterations beyond 100 changed mean
#: Dice by < 0.001 (rigid, affine and the full recipe; DeMBA P14's affine ran its finest
#: level to 200 for nothing), and SyN's finest level, ~8x a coarser one per iteration, its
#: iterations beyond 5 (docs/benchmarks.md, "Where DIPY's time goes", "SyN's kernels").
DEFAULT_RIGID_ITERATIONS = 100
DEFAULT_SYN_LEVEL_ITERS: tuple[int, ...] = (40, 20, 5)

#: SyN's cross-correlation radius and update smoothing (voxels of each level) and largest
#: step (voxels): chosen on real templates of other brains (docs/benchmarks.md, "SyN
#: defaults on real templates"), where DIPY's CC defaults (radius 4, sigma 2) lowered Dice.
DEFAULT_SYN_RADIUS = 2
DEFAULT_SYN_SIGMA_DIFF = 4.0
DEFAULT_SYN_STEP = 0.25

#: The working resolution SyN runs at unless told otherwise (µm), and the ones offered.
DEFAULT_WORKING_RESOLUTION_UM = 100.0
WORKING_RESOLUTIONS_UM: tuple[int, ...] = (25, 50, 100, 200)


def parse_level_iters(text: str, what: str = "SyN iterations") -> tuple[int, ...]:
    """Iterations per level from text such as ``"40, 20, 10"`` (coarsest level first).

    The one parser of this text, for the command line and the Register form alike;
    the values themselves are checked by :class:`SynSettings`.

    Examples
    --------
    >>> parse_level_iters("40; 20, 10")
    (40, 20, 10)
    """
    parts = [x.strip() for x in str(text).replace(";", ",").split(",")]
    if parts and parts[-1] == "":  # a trailing comma
        parts = parts[:-1]
    try:
        if not parts or "" in parts:
            raise ValueError
        iters = tuple(int(x) for x in parts)
    except ValueError:
        raise SettingsError(
            f"{what} {text!r} are not whole numbers: write e.g. '40, 20, 10' (coarsest level "
            "first)."
        ) from None
    if not any(iters):
        raise SettingsError(
            f"{what} {text!r} would run no iteration at all: give at least one level more "
            "than 0, e.g. '40, 20, 10'."
        )
    return iters


def format_level_iters(level_iters: tuple[int, ...]) -> str:
    """Inverse of :func:`parse_level_iters`."""
    return ", ".join(str(n) for n in level_iters)
