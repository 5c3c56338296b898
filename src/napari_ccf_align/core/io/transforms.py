"""ITK transform files: the linear stage as ``.tfm``, SyN as displacement-field NIfTI files.

The files follow ITK's conventions, so SimpleITK, ANTs, 3D Slicer and ITK-SNAP read
them without this package:

- physical space is LPS millimetres;
- a transform maps points of the *fixed* (atlas) space to the *moving* (sample)
  space, the direction ``Resample`` needs to put the sample on the atlas grid;
- a displacement field holds, on a grid in the atlas's space, the LPS vector (mm)
  added to each point; it is a NIfTI vector image (intent ``vector``, 5D with the
  three components on the fifth axis), as ANTs writes its warps.

A SyN session has three files. With ``L`` = the linear transform (``rigid.tfm``),
``W`` = ``syn_warp.nii.gz`` and ``V`` = ``syn_inverse_warp.nii.gz``:

- atlas point -> sample point: ``W`` first, then ``L``
  (``sitk.CompositeTransform([L, W])``: SimpleITK applies the last one first);
- sample point -> atlas point: ``L`` inverted first, then ``V``
  (``sitk.CompositeTransform([V, L.GetInverse()])``).

These are the same compositions ANTs uses for its ``Warp``/``InverseWarp`` pair.
:func:`itk_transforms` builds both from files or from a result.

Examples
--------
>>> import numpy as np
>>> shift = np.eye(4); shift[:3, 3] = (1.0, 2.0, 3.0)  # moving -> atlas, RAS mm
>>> t = linear_transform(shift)
>>> np.round(t.TransformPoint((0.0, 0.0, 0.0)), 6).tolist()  # atlas origin -> sample, LPS
[1.0, 2.0, -3.0]
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.errors import UnreadableFileError, WriteError
from napari_ccf_align.core.volume import Volume

#: Largest difference (mm) allowed between a transform written and the one read back.
_READ_BACK_TOLERANCE_MM = 1e-6


def linear_transform(moving_to_atlas: np.ndarray, centre_ras: np.ndarray | None = None):
    """ITK's fixed -> moving affine transform (LPS) of a moving -> atlas map (RAS mm).

    Parameters
    ----------
    moving_to_atlas : numpy.ndarray
        4 x 4 homogeneous map from the sample's world to the atlas's world (RAS mm).
    centre_ras : numpy.ndarray, optional
        Centre of the transform in the atlas's world (RAS mm); it changes only how
        the parameters are written, not the map.
    """
    m = frames.check_affine(moving_to_atlas, 3)
    fixed_to_moving = frames.world_matrix_to_lps(np.linalg.inv(m))
    centre = None if centre_ras is None else frames.ras_to_lps(np.asarray(centre_ras, float))
    return frames.sitk_affine_transform(fixed_to_moving, centre)


def moving_to_atlas(transform: sitk.Transform) -> np.ndarray:
    """The moving -> atlas map (RAS mm, 4 x 4) of a linear ITK fixed -> moving transform."""
    return np.linalg.inv(frames.world_matrix_to_lps(frames.sitk_transform_matrix(transform)))


def write_transform(transform: sitk.Transform, path: str | os.PathLike) -> Path:
    """Write a linear transform as an ITK text file (``.tfm``) under a temporary name, then rename.

    The file is read back before the rename and must map points as ``transform`` does.
    """
    path = Path(path)

    def verify(tmp: Path) -> None:
        back = read_transform(tmp)
        probe = [(0.0, 0.0, 0.0), (10.0, -5.0, 3.0), (-4.0, 8.0, -6.0)]
        worst = max(
            float(np.linalg.norm(np.subtract(back.TransformPoint(p), transform.TransformPoint(p))))
            for p in probe
        )
        if worst > _READ_BACK_TOLERANCE_MM:
            raise WriteError(
                f"The transform written to {path.parent} reads back differently ({worst:.2g} mm): "
                "check the disk and save again."
            )

    with io.atomic_path(path, verify) as tmp:
        sitk.WriteTransform(transform, str(tmp))
    return path


def read_transform(path: str | os.PathLike) -> sitk.Transform:
    """Read a linear ITK transform file (``.tfm``, ``.txt``, ``.mat``, ``.h5``)."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"No transform file at {path}: check the session folder.")
    try:
        transform = sitk.ReadTransform(str(path))
    except RuntimeError as exc:
        raise UnreadableFileError(
            f"{path.name} is not a readable ITK transform file ({io.first_line(exc)}): save the "
            "session again."
        ) from None
    if transform.IsLinear():
        return transform
    raise UnreadableFileError(
        f"{path.name} holds a non-linear transform where a linear one belongs: give the "
        "session's rigid.tfm."
    )


def field_image(displacement_ras: np.ndarray, grid: Volume) -> sitk.Image:
    """A displacement field (RAS mm, ``(*grid.shape, 3)``) as ITK's vector image (LPS mm, float64).

    The image has ``grid``'s geometry (LPS header), so
    ``sitk.DisplacementFieldTransform(field_image(u, grid))`` moves a point ``p``
    (LPS) to ``p + u_lps(p)``.
    """
    disp = np.asarray(displacement_ras)
    if disp.shape != (*grid.shape, grid.ndim):
        raise WriteError(
            f"A displacement field of shape {disp.shape} does not fit its grid {grid.shape}: "
            "this is a bug; please report it."
        )
    n = grid.ndim
    lps = frames.ras_to_lps(disp, grid.world_axes)
    # ITK's x, y, z = the grid's numpy axes (for the atlas-aligned grid: R, A, S), as ANTs
    # and nibabel users expect of an atlas-space field
    image = sitk.GetImageFromArray(np.transpose(lps, (*range(n - 1, -1, -1), n)), isVector=True)
    reversed_affine = np.asarray(grid.affine, float)[:, [*range(n - 1, -1, -1), n]]
    origin, spacing, direction = frames.itk_geometry(reversed_affine, grid.world_axes)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


def write_field(displacement_ras: np.ndarray, grid: Volume, path: str | os.PathLike) -> Path:
    """Write a displacement field as a NIfTI vector image (float32, LPS mm) atomically.

    Read back before the rename: the size must match and the values must agree to
    float32 precision.
    """
    path = Path(path)
    image = sitk.Cast(field_image(displacement_ras, grid), sitk.sitkVectorFloat32)

    def verify(tmp: Path) -> None:
        try:
            back = sitk.ReadImage(str(tmp))
            same = back.GetSize() == image.GetSize() and np.array_equal(
                sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image)
            )
        except RuntimeError:
            same = False
        if not same:
            raise WriteError(
                f"The displacement field written into {path.parent} is incomplete (the disk may "
                "be full): free some space or choose another folder."
            )

    with io.atomic_path(path, verify) as tmp:
        sitk.WriteImage(image, str(tmp), True)
    return path


def read_field(path: str | os.PathLike) -> tuple[np.ndarray, Volume]:
    """Read a displacement field file back: ``(field in RAS mm, float32; its grid)``."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFileError(f"No displacement field at {path}: check the session folder.")
    try:
        io.check_complete(path, finite=True)  # whole and finite: ITK would read neither as such
    except UnreadableFileError as exc:
        if "NaN or infinite" not in str(exc):
            raise
        raise UnreadableFileError(
            f"{path.name} holds NaN or infinite displacements: the field is damaged; use the "
            "session as it was saved, or save it again."
        ) from None
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise UnreadableFileError(
            f"{path.name} could not be read as a displacement field ({io.first_line(exc)}): save "
            "the session again."
        ) from None
    n = image.GetDimension()
    if image.GetNumberOfComponentsPerPixel() != n or n != 3:
        raise UnreadableFileError(
            f"{path.name} is not a 3D displacement field ({image.GetNumberOfComponentsPerPixel()} "
            f"value(s) per voxel in {n}D, not 3 in 3D): give a session's syn_warp.nii.gz or "
            "syn_inverse_warp.nii.gz."
        )
    affine = frames.affine_from_itk(image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    lps = sitk.GetArrayFromImage(image).astype(np.float32)
    # back to the axis order the field was written from (see field_image)
    lps = np.transpose(lps, (2, 1, 0, 3))
    affine = affine[:, [2, 1, 0, 3]]
    grid = Volume.grid(lps.shape[:-1], affine, path.name.split(".")[0])
    return frames.lps_to_ras(lps, dtype=np.float32), grid
