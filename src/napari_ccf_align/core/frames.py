"""Frames and the conversions between them: the one coordinate contract.

Every other module asks this one; none converts frames by itself.

Frames
------
world
    RAS+ millimetres: +x Right, +y Anterior, +z Superior. Every layer and every
    :class:`~napari_ccf_align.core.volume.Volume` lives here, so overlays line up
    without resampling. napari's world axes are the same three, in the same order.
index
    Array index in the array's own axis order (numpy order). A 4 x 4 affine maps
    index to world.
LPS
    ITK's physical frame (+x Left, +y Posterior, +z Superior), used by SimpleITK
    images, ITK transform files, NRRD and MHA headers. Converted to and from
    world only here, by flipping the first two axes.
ITK index
    SimpleITK orders array axes fastest first (x, y, z), the reverse of numpy.

Orientation codes are written the nibabel way: letter ``k`` names the direction
towards which array axis ``k`` increases (the raw Allen arrays are ``PIR``).
BrainGlobe writes the opposite letter, naming the corner the origin sits in, in
lower case (BrainGlobe ``asl`` is nibabel ``PIR``). Both styles are accepted, but
the style is always stated, never guessed.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core.errors import (
    AffineError,
    OrientationError,
    SettingsError,
    VoxelSizeError,
)

OrientationStyle = Literal["nibabel", "brainglobe"]
#: The linear transforms SimpleITK optimises.
TransformKind = Literal["rigid", "similarity", "affine"]

#: World axis names, in world axis order.
WORLD_AXES = "RAS"

_LETTER_AXIS = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
_AXIS_LETTER = {v: k for k, v in _LETTER_AXIS.items()}
_OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}

# --------------------------------------------------------------------------- orientation codes


def parse_orientation(code: str, style: OrientationStyle, ndim: int = 3) -> str:
    """Validate an orientation code and return it in nibabel style.

    Parameters
    ----------
    code : str
        Orientation code, e.g. ``"PIR"`` (nibabel) or ``"asl"`` (BrainGlobe).
    style : {"nibabel", "brainglobe"}
        How to read the letters. ``"nibabel"``: letter k is the direction array
        axis k increases towards. ``"brainglobe"``: letter k names the side the
        origin sits on along axis k (the opposite direction).
    ndim : int
        Number of array axes the code must describe (2 or 3).

    Returns
    -------
    str
        Upper-case nibabel-style code.

    Raises
    ------
    OrientationError
        If the code has the wrong length, an unknown letter, or names one
        anatomical axis twice.

    Examples
    --------
    >>> parse_orientation("asl", "brainglobe")
    'PIR'
    >>> parse_orientation("ras", "nibabel")
    'RAS'
    """
    if style not in ("nibabel", "brainglobe"):
        raise OrientationError(
            f"Unknown orientation style {style!r}: use 'nibabel' (letters name where each axis "
            "goes) or 'brainglobe' (letters name the origin corner)."
        )
    if not isinstance(code, str) or not code.strip():
        raise OrientationError(
            "No orientation code was given: give one letter per array axis, e.g. 'PIR'."
        )
    letters = code.strip().upper()
    if len(letters) != ndim:
        raise OrientationError(
            f"Orientation code {code!r} has {len(letters)} letters but the volume has {ndim} "
            f"axes: give exactly {ndim} letters from R/L, A/P, S/I."
        )
    unknown = sorted({c for c in letters if c not in _LETTER_AXIS})
    if unknown:
        raise OrientationError(
            f"Orientation code {code!r} contains {', '.join(unknown)}, which is not a direction: "
            "use only R/L, A/P and S/I."
        )
    axes = [_LETTER_AXIS[c][0] for c in letters]
    if len(set(axes)) != len(axes):
        raise OrientationError(
            f"Orientation code {code!r} names the same anatomical axis twice: use each of "
            "R/L, A/P, S/I at most once."
        )
    if style == "brainglobe":
        letters = "".join(_OPPOSITE[c] for c in letters)
    return letters


def to_brainglobe(code: str) -> str:
    """Return the BrainGlobe-style spelling of a nibabel-style code.

    >>> to_brainglobe("PIR")
    'asl'
    """
    code = parse_orientation(code, "nibabel", len(code))
    return "".join(_OPPOSITE[c] for c in code).lower()


def all_orientation_codes(ndim: int = 3) -> list[str]:
    """Every valid nibabel-style code with ``ndim`` letters (48 for 3D)."""
    codes = []
    for axes in itertools.permutations(range(3), ndim):
        for signs in itertools.product((1, -1), repeat=ndim):
            codes.append("".join(_AXIS_LETTER[(a, s)] for a, s in zip(axes, signs, strict=True)))
    return codes


def world_axes_of(code: str) -> str:
    """World axes a code spans, in world (RAS) order: ``"SR"`` -> ``"RS"``."""
    return "".join(sorted({"RAS"[_LETTER_AXIS[c][0]] for c in code}, key="RAS".index))


def check_voxel_size(
    voxel_size: float | Sequence[float], ndim: int, unit: str = "mm"
) -> np.ndarray:
    """Validate a voxel size and return it as a float array of length ``ndim``.

    Parameters
    ----------
    voxel_size : float or sequence of float
        One size for every axis or one per array axis, in ``unit``.
    ndim : int
        Number of array axes.
    unit : str
        Unit named in error messages.

    Raises
    ------
    VoxelSizeError
        If a size is zero, negative or not finite, or the length is wrong.
    """
    try:
        size = np.asarray(voxel_size, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise VoxelSizeError(
            f"Voxel size {voxel_size!r} is not a number: give {ndim} positive sizes in {unit}."
        ) from None
    if size.size == 1:
        size = np.repeat(size, ndim)
    if size.size != ndim:
        raise VoxelSizeError(
            f"Voxel size has {size.size} values but the volume has {ndim} axes: give one size "
            f"or {ndim} sizes in {unit}."
        )
    if not np.all(np.isfinite(size)) or np.any(size <= 0):
        raise VoxelSizeError(
            f"Voxel size {tuple(float(s) for s in size)} {unit} is not valid: every size must be a "
            "positive, finite number."
        )
    mm = size * _UNIT_MM.get(unit, 1.0)
    if np.any(mm > 1000.0) or np.any(mm < 1e-6):
        raise VoxelSizeError(
            f"Voxel size {tuple(float(s) for s in size)} {unit} is outside 1 nm to 1 m: check "
            f"its unit ({unit} here) or the file's header."
        )
    return size


_UNIT_MM = {"mm": 1.0, "µm": 1e-3, "um": 1e-3}


def check_style(code: str, style: OrientationStyle) -> None:
    """Refuse a code whose letter case suggests the other style, instead of guessing.

    BrainGlobe writes its codes in lower case (``"asl"``), nibabel in upper case
    (``"PIR"``); the two read the same letters as opposite directions. A lower-case
    code with the nibabel style (or an upper-case one with BrainGlobe's) is asked about.

    Raises
    ------
    OrientationError
        Naming both readings, so the user can choose.

    Examples
    --------
    >>> check_style("PIR", "nibabel")
    >>> check_style("asl", "nibabel")
    Traceback (most recent call last):
    ...
    napari_ccf_align.core.errors.OrientationError: 'asl' is written in lower case, as BrainGlobe writes codes, but the style is nibabel: choose the BrainGlobe style ('asl' = nibabel 'PIR'), or type the nibabel code in capitals ('ASL').
    """
    letters = code.strip()
    if not letters.isalpha():
        return
    if not (letters.islower() or letters.isupper()):
        raise OrientationError(
            f"{letters!r} mixes capitals and lower case, so it reads one way as a nibabel code "
            "and the other way as a BrainGlobe code: type it in capitals (nibabel) or in lower "
            "case (BrainGlobe)."
        )
    if style == "nibabel" and letters.islower():
        other = "".join(_OPPOSITE[c] for c in letters.upper())
        raise OrientationError(
            f"{letters!r} is written in lower case, as BrainGlobe writes codes, but the style is "
            f"nibabel: choose the BrainGlobe style ({letters!r} = nibabel {other!r}), or type "
            f"the nibabel code in capitals ({letters.upper()!r})."
        )
    if style == "brainglobe" and letters.isupper():
        other = "".join(_OPPOSITE[c] for c in letters)
        raise OrientationError(
            f"{letters!r} is written in capitals, as nibabel writes codes, but the style is "
            f"BrainGlobe: choose the nibabel style, or type the BrainGlobe code in lower case "
            f"({letters.lower()!r} = nibabel {other!r})."
        )


def file_axes(code: str) -> list[tuple[int, bool]]:
    """For each world axis (R, A, S), the file axis along it and whether it runs backwards.

    ``code`` is the file's nibabel code. A layer holds the array in RAS axis order;
    world axis ``k`` of it is file axis ``j``, and the file's index runs the other
    way when ``code[j]`` is L, P or I.

    Examples
    --------
    >>> file_axes("PIR")
    [(2, False), (0, True), (1, True)]
    """
    out = []
    for axis in "RAS":
        j = next(j for j, c in enumerate(code) if world_axes_of(c) == axis)
        out.append((j, code[j] not in "RAS"))
    return out


def orientation_affine(
    code: str,
    voxel_size_mm: float | Sequence[float],
    origin_mm: Sequence[float] | None = None,
    style: OrientationStyle = "nibabel",
) -> np.ndarray:
    """Index-to-world affine of an axis-aligned array.

    Parameters
    ----------
    code : str
        Orientation code (see :func:`parse_orientation`), one letter per array axis.
    voxel_size_mm : float or sequence of float
        Voxel size along each array axis, in mm.
    origin_mm : sequence of float, optional
        World position (RAS mm) of voxel index 0. Default: the world origin.
    style : {"nibabel", "brainglobe"}
        How ``code`` is written.

    Returns
    -------
    numpy.ndarray
        ``(n + 1, n + 1)`` affine; world axes are those the code spans, in RAS order.

    Examples
    --------
    >>> orientation_affine("PIR", 0.1)[:3, :3]
    array([[ 0. ,  0. ,  0.1],
           [-0.1,  0. ,  0. ],
           [ 0. , -0.1,  0. ]])
    """
    ndim = len(code.strip())
    nib = parse_orientation(code, style, ndim)
    size = check_voxel_size(voxel_size_mm, ndim)
    world = world_axes_of(nib)
    affine = np.eye(ndim + 1)
    affine[:ndim, :ndim] = 0.0
    for k, letter in enumerate(nib):
        axis, sign = _LETTER_AXIS[letter]
        affine[world.index("RAS"[axis]), k] = sign * size[k]
    if origin_mm is not None:
        affine[:ndim, ndim] = np.asarray(origin_mm, dtype=float)
    return affine


def affine_orientation(affine: np.ndarray, world_axes: str = WORLD_AXES) -> str:
    """Nibabel-style code of the world axes closest to each array axis.

    For oblique affines the code names the nearest axes (the assignment that
    maximises the summed absolute cosines).

    Parameters
    ----------
    affine : numpy.ndarray
        ``(n + 1, n + 1)`` index-to-world affine.
    world_axes : str
        Names of the affine's world axes in order (``"RAS"`` in 3D).
    """
    n = affine.shape[0] - 1
    cols = np.asarray(affine, dtype=float)[:n, :n]
    norms = np.linalg.norm(cols, axis=0)
    if np.any(norms == 0) or not np.all(np.isfinite(cols)):
        raise AffineError("The affine has a zero or non-finite column: it cannot be oriented.")
    unit = cols / norms
    best = max(
        itertools.permutations(range(n)),
        key=lambda perm: sum(abs(unit[perm[k], k]) for k in range(n)),
    )
    letters = []
    for k, row in enumerate(best):
        ras_axis = "RAS".index(world_axes[row])
        letters.append(_AXIS_LETTER[(ras_axis, 1 if unit[row, k] > 0 else -1)])
    return "".join(letters)


def reorientation(affine: np.ndarray, target: str, world_axes: str = WORLD_AXES):
    """Axis permutation and flips that bring an array to a target orientation.

    Parameters
    ----------
    affine : numpy.ndarray
        Current index-to-world affine.
    target : str
        Nibabel-style code wanted, e.g. ``"RAS"``.
    world_axes : str
        The affine's world axes.

    Returns
    -------
    order : tuple of int
        New axis k is old axis ``order[k]`` (as for ``numpy.transpose``).
    flip : tuple of bool
        Whether new axis k must be reversed after the transpose.
    """
    current = affine_orientation(affine, world_axes)
    n = len(current)
    target = parse_orientation(target, "nibabel", n)
    if world_axes_of(target) != world_axes_of(current):
        raise OrientationError(
            f"Cannot reorient a {current} array to {target}: they span different anatomical axes."
        )
    order, flip = [], []
    for letter in target:
        axis = _LETTER_AXIS[letter][0]
        old = next(k for k, c in enumerate(current) if _LETTER_AXIS[c][0] == axis)
        order.append(old)
        flip.append(current[old] != letter)
    return tuple(order), tuple(flip)


# --------------------------------------------------------------------------- affines


def check_affine(affine: np.ndarray, ndim: int) -> np.ndarray:
    """Return ``affine`` as a float array after checking shape, finiteness and rank."""
    try:
        a = np.asarray(affine, dtype=float)
    except (TypeError, ValueError):
        raise AffineError(
            f"The affine is not a matrix of numbers (got {type(affine).__name__}): give a "
            f"({ndim + 1}, {ndim + 1}) array."
        ) from None
    if a.shape != (ndim + 1, ndim + 1):
        raise AffineError(
            f"The affine has shape {a.shape}, not the ({ndim + 1}, {ndim + 1}) a {ndim}D volume "
            f"needs: give a ({ndim + 1}, {ndim + 1}) index-to-world matrix."
        )
    if not np.all(np.isfinite(a)):
        raise AffineError("The affine contains NaN or infinite values: check the file's header.")
    if abs(np.linalg.det(a[:ndim, :ndim])) < 1e-12:
        raise AffineError("The affine is singular (a voxel size is zero): check the file's header.")
    return a


def apply_affine(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points (``(..., n)``, last axis = coordinates) through an ``(n+1, n+1)`` affine."""
    a = np.asarray(affine, dtype=float)
    p = np.asarray(points, dtype=float)
    n = a.shape[0] - 1
    if p.ndim == 0 or p.shape[-1] != n:
        return p @ a[:n, :n].T + a[:n, n]  # (raises numpy's shape error)
    # column by column: 3x faster than ``p @ m.T`` for millions of points (numpy's matmul
    # of a tall, 3-wide array slows down past a few million rows)
    out = np.empty(p.shape, float)
    for k in range(n):
        col = p[..., 0] * a[k, 0] + a[k, n]
        for j in range(1, n):
            col += p[..., j] * a[k, j]
        out[..., k] = col
    return out


def spacing_of(affine: np.ndarray) -> np.ndarray:
    """Voxel size along each array axis (mm): the lengths of the affine's columns."""
    n = affine.shape[0] - 1
    return np.linalg.norm(np.asarray(affine, dtype=float)[:n, :n], axis=0)


# --------------------------------------------------------------------------- RAS <-> LPS, numpy <-> ITK


def lps_flip(world_axes: str = WORLD_AXES) -> np.ndarray:
    """Diagonal sign matrix that turns world (RAS) coordinates into LPS and back.

    ``world_axes`` names the axes present (``"RAS"`` in 3D, e.g. ``"RS"`` for a
    coronal section); R and A change sign, S does not.
    """
    return np.diag([-1.0 if a in "RA" else 1.0 for a in world_axes])


def ras_to_lps(points: np.ndarray, world_axes: str = WORLD_AXES, dtype: type = float) -> np.ndarray:
    """Convert points or vectors (``(..., n)``) from RAS to LPS (the same flip converts back).

    A sign change per component, not a matrix product: a BLAS product can turn a NaN into 0,
    and a NaN (a damaged field, a missing coordinate) must stay NaN so it is seen.
    """
    out = np.array(points, dtype=dtype)
    for k, axis in enumerate(world_axes):
        if axis in "RA":
            out[..., k] *= -1
    return out


lps_to_ras = ras_to_lps


def world_matrix_to_lps(matrix: np.ndarray, world_axes: str = WORLD_AXES) -> np.ndarray:
    """Express a homogeneous world-to-world transform given in RAS in LPS (and back)."""
    n = len(world_axes)
    f = np.eye(n + 1)
    f[:n, :n] = lps_flip(world_axes)
    return f @ np.asarray(matrix, dtype=float) @ f


def itk_geometry(affine: np.ndarray, world_axes: str = WORLD_AXES):
    """SimpleITK origin, spacing and direction for an index-to-world (RAS) affine.

    The array is handed to SimpleITK with ``sitk.GetImageFromArray`` (numpy order
    in, ITK index order (x, y, z) = reversed numpy order). Physical space is LPS.

    Returns
    -------
    origin : tuple of float
        LPS mm of ITK index 0.
    spacing : tuple of float
        mm, in ITK index order.
    direction : tuple of float
        Row-major direction cosines, column j = ITK index axis j, in LPS.

    Raises
    ------
    AffineError
        If the affine has shear (ITK images carry rotation and spacing only).
    """
    n = len(world_axes)
    a = check_affine(affine, n)
    f = lps_flip(world_axes)
    lin = f @ a[:n, :n][:, ::-1]  # columns in ITK index order, rows in LPS
    spacing = np.linalg.norm(lin, axis=0)
    direction = lin / spacing
    if not np.allclose(direction.T @ direction, np.eye(n), atol=1e-6):
        raise AffineError(
            "The affine has shear, which ITK images cannot hold: resample the volume onto a "
            "grid without shear first."
        )
    origin = f @ a[:n, n]
    return tuple(origin.tolist()), tuple(spacing.tolist()), tuple(direction.reshape(-1).tolist())


def affine_from_itk(origin, spacing, direction, world_axes: str = WORLD_AXES) -> np.ndarray:
    """Index-to-world (RAS) affine, numpy axis order, from SimpleITK geometry (LPS, ITK order)."""
    n = len(spacing)
    f = lps_flip(world_axes)
    lin = np.asarray(direction, dtype=float).reshape(n, n) * np.asarray(spacing, dtype=float)
    a = np.eye(n + 1)
    a[:n, :n] = (f @ lin)[:, ::-1]
    a[:n, n] = f @ np.asarray(origin, dtype=float)
    return a


def sitk_transform_matrix(transform: sitk.Transform, ndim: int = 3) -> np.ndarray:
    """Homogeneous matrix (LPS, ITK's fixed -> moving direction) of a linear SimpleITK transform.

    Read off by mapping the origin and the unit vectors, so it works for every
    linear transform kind (Euler, versor, similarity, affine, composite of these).
    """
    o = np.asarray(transform.TransformPoint((0.0,) * ndim))
    m = np.eye(ndim + 1)
    for k in range(ndim):
        e = [0.0] * ndim
        e[k] = 1.0
        m[:ndim, k] = np.asarray(transform.TransformPoint(tuple(e))) - o
    m[:ndim, ndim] = o
    return m


def sitk_affine_transform(matrix_lps: np.ndarray, centre_lps: Sequence[float] | None = None):
    """A SimpleITK ``AffineTransform`` from a homogeneous LPS matrix (fixed -> moving)."""
    n = matrix_lps.shape[0] - 1
    tx = sitk.AffineTransform(n)
    c = np.zeros(n) if centre_lps is None else np.asarray(centre_lps, dtype=float)
    lin = matrix_lps[:n, :n]
    tx.SetCenter(tuple(c.tolist()))
    tx.SetMatrix(tuple(lin.reshape(-1).tolist()))
    tx.SetTranslation(tuple((matrix_lps[:n, n] - c + lin @ c).tolist()))
    return tx


def itk_start_transform(
    start: np.ndarray, centre_mm: tuple[float, ...], kind: TransformKind
) -> sitk.Transform:
    """SimpleITK's fixed -> moving start (LPS) from a moving -> atlas map (RAS mm).

    The one builder of an initial transform: the engine starts from it and
    :meth:`RigidParams.sitk_transform` is it. An ``Euler3DTransform`` (``ComputeZYX`` on)
    for ``"rigid"``, a ``Similarity3DTransform`` or an ``AffineTransform``, centred on
    where ``start`` puts ``centre_mm`` (the centre of rotation, RAS mm, moving frame).
    A mirrored map needs ``"affine"``.

    Raises
    ------
    SettingsError
        If ``start`` scales, shears or mirrors and ``kind`` cannot hold that.
    """
    m_lps = world_matrix_to_lps(np.linalg.inv(start))
    centre = ras_to_lps(apply_affine(start, np.asarray(centre_mm, dtype=float)))
    lin = m_lps[:3, :3]
    out = {
        "rigid": sitk.Euler3DTransform,
        "similarity": sitk.Similarity3DTransform,
        "affine": lambda: sitk.AffineTransform(3),
    }[kind]()
    if kind == "rigid":
        out.SetComputeZYX(True)
    out.SetCenter(tuple(centre.tolist()))
    flat = tuple(lin.reshape(-1).tolist())
    try:
        if kind == "affine":
            out.SetMatrix(flat)
        else:
            out.SetMatrix(flat, 1e-6)  # orthogonality tolerance
    except RuntimeError:
        raise SettingsError(
            f"The start map scales or shears, which a {kind} transform cannot: start from the "
            "Align state, or choose a more general transform (similarity or affine)."
        ) from None
    out.SetTranslation(tuple((m_lps[:3, 3] - centre + lin @ centre).tolist()))
    return out


# --------------------------------------------------------------------------- rotations


def _rotation(axis: int, degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i] = r[j, j] = c
    r[i, j], r[j, i] = -s, s
    return r


def rotation_matrix(rotation_deg: Sequence[float]) -> np.ndarray:
    """Rotation matrix (RAS) for right-handed angles about R, A and S, in degrees.

    The rotation about R is applied first, then about A, then about S (axes fixed
    in the world): ``R = Rs @ Ra @ Rr``. A positive angle about R turns +A towards +S.
    """
    rr, ra, rs = (float(x) for x in rotation_deg)
    return _rotation(2, rs) @ _rotation(1, ra) @ _rotation(0, rr)


def rotation_angles(matrix: np.ndarray) -> tuple[float, float, float]:
    """Angles (degrees about R, A, S) with ``rotation_matrix(angles) == matrix``.

    For the gimbal-lock case (rotation about A of +-90 degrees) the rotation about
    R is set to zero.
    """
    m = np.asarray(matrix, dtype=float)
    sin_a = float(np.clip(-m[2, 0], -1.0, 1.0))
    a = math.asin(sin_a)
    if abs(math.cos(a)) > 1e-9:
        r = math.atan2(m[2, 1], m[2, 2])
        s = math.atan2(m[1, 0], m[0, 0])
    else:
        r = 0.0
        s = math.atan2(-m[0, 1], m[1, 1])
    return (math.degrees(r), math.degrees(a), math.degrees(s))


# --------------------------------------------------------------------------- the rigid-parameter object


def dipy_prealign(moving_to_atlas: np.ndarray) -> np.ndarray:
    """DIPY's ``prealign`` / ``AffineMap`` matrix from a moving -> atlas world map (RAS mm).

    DIPY maps static (atlas) world points to moving world points, so this is the
    inverse. Use with ``static_grid2world`` and ``moving_grid2world`` set to the
    volumes' index-to-world (RAS) affines. A registration result's ``matrix`` is
    already the whole moving -> atlas map (hand alignment included): pass it alone.

    Examples
    --------
    >>> m = np.eye(4); m[:3, 3] = (1.0, 2.0, 3.0)
    >>> dipy_prealign(m)[:3, 3].tolist()
    [-1.0, -2.0, -3.0]
    """
    return np.linalg.inv(np.asarray(moving_to_atlas, dtype=float))


@dataclass(frozen=True)
class RigidParams:
    """The user's initial alignment of the moving volume: flips, rotation and shift.

    All in the RAS world. A moving-volume point ``p`` (mm) goes to

    ``p' = c + t + R @ F @ (p - c)``

    where ``c`` is ``centre_mm``, ``F`` mirrors the axes named by ``flip`` (through
    ``c``), ``R = Rs @ Ra @ Rr`` rotates about R first, then A, then S (angles in
    ``rotation_deg``, right-handed, world-fixed axes; see :func:`rotation_matrix`)
    and ``t`` is ``translation_mm``. :meth:`matrix` is this map; the napari preview,
    the SimpleITK initial transform and DIPY's prealign matrix are all derived from it.

    Parameters
    ----------
    rotation_deg : tuple of float
        Rotations about the R, A and S axes, in degrees.
    translation_mm : tuple of float
        Shift along R, A, S, in mm, applied after the rotation.
    centre_mm : tuple of float
        Centre of rotation and of the flips, RAS mm, in the moving volume's frame.
    flip : tuple of bool
        Mirror across the plane through the centre normal to R, A, S respectively.

    Examples
    --------
    >>> p = RigidParams(rotation_deg=(0, 0, 90))
    >>> apply_affine(p.matrix(), [1.0, 0.0, 0.0]).round(6)
    array([0., 1., 0.])
    """

    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    centre_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    flip: tuple[bool, bool, bool] = field(default=(False, False, False))

    def __post_init__(self) -> None:
        for name in ("rotation_deg", "translation_mm", "centre_mm"):
            given = getattr(self, name)
            try:
                values = tuple(float(v) for v in given)
            except (TypeError, ValueError):
                values = ()
            if len(values) != 3 or not all(math.isfinite(v) for v in values):
                raise AffineError(
                    f"The alignment's {name} is {given!r}: give three finite numbers (R, A, S)."
                )
            object.__setattr__(self, name, values)
        try:
            flips = tuple(bool(v) for v in self.flip if isinstance(v, (bool, int, np.bool_)))
        except TypeError:
            flips = ()
        if len(flips) != 3 or len(flips) != len(tuple(self.flip)):
            raise AffineError(
                f"The alignment's flip is {self.flip!r}: give three true/false values (R, A, S)."
            )
        object.__setattr__(self, "flip", flips)

    # -- derived transforms --------------------------------------------------------------

    def linear(self) -> np.ndarray:
        """The 3 x 3 part ``R @ F`` (RAS)."""
        f = np.diag([-1.0 if v else 1.0 for v in self.flip])
        return rotation_matrix(self.rotation_deg) @ f

    def matrix(self) -> np.ndarray:
        """4 x 4 world transform (RAS mm) taking moving-volume points to their aligned place."""
        c = np.asarray(self.centre_mm)
        lin = self.linear()
        m = np.eye(4)
        m[:3, :3] = lin
        m[:3, 3] = c + np.asarray(self.translation_mm) - lin @ c
        return m

    @property
    def has_flip(self) -> bool:
        """Whether any axis is mirrored (then the map is not a proper rotation)."""
        return any(self.flip)

    def dipy_prealign(self) -> np.ndarray:
        """DIPY's ``prealign`` for this hand alignment alone (see :func:`dipy_prealign`)."""
        return dipy_prealign(self.matrix())

    def sitk_transform(self) -> sitk.Transform:
        """SimpleITK initial transform in ITK's fixed -> moving direction, in LPS.

        :func:`itk_start_transform` of :meth:`matrix`, as the engine builds it: an
        ``Euler3DTransform`` centred on the aligned rotation centre when there is no
        flip, an ``AffineTransform`` when an axis is mirrored.
        """
        return itk_start_transform(
            self.matrix(), self.centre_mm, "affine" if self.has_flip else "rigid"
        )

    # -- construction from other forms ---------------------------------------------------

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, centre_mm: Sequence[float] = (0, 0, 0)) -> RigidParams:
        """Parameters of a rigid (optionally mirrored) 4 x 4 RAS world transform.

        A mirrored matrix is written as a flip of R followed by a rotation.

        Raises
        ------
        AffineError
            If the matrix is not 4 x 4 and finite, or scales or shears.
        """
        m = check_affine(matrix, 3)
        lin = m[:3, :3]
        if not np.allclose(lin.T @ lin, np.eye(3), atol=1e-6):
            raise AffineError(
                "The transform scales or shears, so it is not rigid: use an affine transform."
            )
        flip = (bool(np.linalg.det(lin) < 0), False, False)
        rot = lin @ np.diag([-1.0 if flip[0] else 1.0, 1.0, 1.0])
        c = np.asarray(centre_mm, dtype=float)
        t = m[:3, 3] + lin @ c - c
        return cls(rotation_angles(rot), tuple(t.tolist()), tuple(c.tolist()), flip)

    @classmethod
    def from_sitk(
        cls, transform: sitk.Transform, centre_mm: Sequence[float] | None = None
    ) -> RigidParams:
        """Parameters of a rigid SimpleITK transform (fixed -> moving, LPS).

        Parameters
        ----------
        transform : SimpleITK.Transform
            Any linear transform; its matrix must be a rotation (or a mirrored one).
        centre_mm : sequence of float, optional
            Centre of rotation to express the result about (RAS mm, moving frame).
            Default: the transform's centre mapped into the moving frame, which
            makes ``from_sitk(p.sitk_transform())`` return ``p``.
        """
        m_lps = sitk_transform_matrix(transform)
        if centre_mm is None:
            try:
                centre_fixed = transform.GetCenter()
            except AttributeError:
                centre_fixed = (0.0, 0.0, 0.0)
            centre_mm = ras_to_lps(np.asarray(transform.TransformPoint(tuple(centre_fixed))))
        forward = np.linalg.inv(world_matrix_to_lps(m_lps))
        return cls.from_matrix(forward, centre_mm)

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready dictionary (lists of floats and booleans)."""
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> RigidParams:
        """Inverse of :meth:`to_dict` (also reads the older key ``center_mm``)."""
        if not isinstance(data, dict):
            raise AffineError(
                f"Rigid parameters must be a mapping, not {type(data).__name__}: give "
                "rotation_deg, translation_mm, centre_mm and flip."
            )
        data = {("centre_mm" if k == "center_mm" else k): v for k, v in data.items()}
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise AffineError(
                f"Unknown rigid parameter(s) {', '.join(unknown)}: use rotation_deg, "
                "translation_mm, centre_mm and flip."
            )
        return cls(**data)

    def to_json(self) -> str:
        """The parameters as a JSON string."""
        return json.dumps(self.to_dict())
