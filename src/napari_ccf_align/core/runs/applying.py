"""A saved session applied to a file: which image it is, which way it goes, what is written.

The command line's ``apply`` and the Session dock share :func:`.apply.map_volume`;
this module adds what only a file path says: the word ``annotation`` (the session's
own atlas labels), an Allen CCF file (read in its true orientation), a channel of
the sample (read with the session's geometry unless told otherwise), or a CSV of
points with their regions.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_ccf_align.core import io
from napari_ccf_align.core.align.state import crop_box_corners
from napari_ccf_align.core.errors import CcfAlignError, OutputError
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.results import apply
from napari_ccf_align.core.runs import session
from napari_ccf_align.core.volume import Volume

#: File names of the Allen CCF's own volumes, whose NRRD headers misstate the orientation.
_ALLEN_FILE = re.compile(r"(annotation|average_template)_\d+\.nrrd")


@dataclass(frozen=True)
class Geometry:
    """How to read a sample-side image: voxel size (µm per file axis), code and style.

    None in a field means "as the session's sample was read".
    """

    voxel_size_um: tuple[float, float, float] | None = None
    orientation: str | None = None
    style: str | None = None


def is_points_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a CSV of points (else an image or the word ``annotation``)."""
    return str(path).lower().endswith(".csv")


def check_target(
    target: str | os.PathLike,
    source: str | os.PathLike,
    session_folder: str | os.PathLike,
    force: bool = False,
) -> Path:
    """The output path of an apply, refused (before any work) where it would lose data.

    An output never replaces its input, a file of the session, or, without ``force``,
    any existing file; a CSV of points goes to a ``.csv`` and an image never does.

    Raises
    ------
    OutputError
        Naming the problem and what to do; nothing was written.
    """
    target = Path(target)
    store = io.suffix_of(target) in io.ZARR_SUFFIXES
    if target.is_dir() and not (store and io.exists(target)):
        raise OutputError(f"--out {target} is a folder: give a file name to write.")
    out = target.resolve()
    if str(source).lower() != "annotation" and Path(source).exists():
        if out == Path(source).resolve() or (target.exists() and os.path.samefile(target, source)):
            raise OutputError(
                f"--out {target} is the input itself: give another file name, so your input "
                "is kept (nothing was written)."
            )
    folder = Path(session_folder).resolve()
    if folder == out.parent or folder in out.parents:
        raise OutputError(
            f"--out {target} lies inside the session folder {session_folder}: write it "
            "elsewhere, so the session's own files are kept (nothing was written)."
        )
    csv_out = target.name.lower().endswith(".csv")
    if is_points_file(source) != csv_out:
        want = "a .csv file" if is_points_file(source) else "an image file (.nii.gz, .nrrd, .tif)"
        raise OutputError(
            f"--out {target} does not suit {Path(source).name}: give {want} (nothing was written)."
        )
    if target.exists() and not force:
        raise OutputError(
            f"--out {target} exists: give another file name, or --force to replace it (it is "
            "replaced only once the new file is written whole)."
        )
    return target


def read_for_atlas(saved: session.Session, path: str | os.PathLike, geometry: Geometry) -> Volume:
    """An image on the sample's grid (another channel), read with the session's geometry
    unless ``geometry`` says otherwise."""
    rec = saved.moving
    return session.read_input(
        path,
        geometry.voxel_size_um or rec.voxel_size_um,
        geometry.orientation or rec.orientation,
        geometry.style or rec.style,
    )


def world_box(volume: Volume) -> np.ndarray:
    """``(2, 3)`` lowest and highest RAS corner (mm) of the space a volume's voxels cover."""
    world = crop_box_corners(volume, None)  # the outer faces of the whole grid
    return np.stack([world.min(axis=0), world.max(axis=0)])


def check_same_tissue(image: Volume, sample: Volume) -> None:
    """Refuse an image that does not cover the registered sample's space (RAS mm, to within
    the coarser voxel): mapped through the session it would land in the wrong place.

    Another channel of the same acquisition passes at any resolution; a volume of another
    shape, orientation or voxel size over the same voxels does not.
    """
    if image.ndim != 3:
        raise CcfAlignError(
            f"{image.name!r} is {image.ndim}D: give a 3D image on the sample's grid (another "
            "channel of the registered volume)."
        )
    gap = float(np.abs(world_box(image) - world_box(sample)).max())
    tolerance = float(max(image.spacing.max(), sample.spacing.max()))
    if gap > tolerance:
        size = " × ".join(map(str, image.shape))
        want = " × ".join(map(str, sample.shape))
        raise CcfAlignError(
            f"{image.name!r} ({size} voxels) does not cover the same space as the registered "
            f"sample ({want} voxels; their boxes differ by {gap:.3g} mm): give another channel "
            "of the same acquisition, or its true voxel size and orientation (the Load form's "
            "fields, or --voxel-size and --orientation)."
        )


def read_for_sample(
    saved: session.Session,
    folder: Path,
    path: str | os.PathLike,
    labels: bool,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
) -> tuple[Volume, bool]:
    """``(atlas-space image, labels?)`` to put on the sample's grid.

    ``"annotation"`` is the session's own atlas annotation (labels); an Allen CCF file
    is read in its true orientation (labels when it is an annotation); any other file
    is read as its header says.
    """
    if str(path).lower() == "annotation":
        _, annotation, _ = session.read_fixed(saved, folder, cache, base_url)
        if annotation is None:
            raise CcfAlignError(
                "This session's atlas has no annotation: give an atlas-space label image file."
            )
        return annotation, True
    name = Path(path).name
    if _ALLEN_FILE.fullmatch(name):
        return atlas.read_allen_nrrd(path), name.startswith("annotation") or labels
    return io.read_volume(path), labels


@dataclass(frozen=True)
class Target:
    """Which grid an apply writes on: the atlas at another voxel size (``resolution_um``,
    ``--to atlas``), or another file's grid over the same sample (``on``, ``--to sample``:
    e.g. the full level of the OME-Zarr registered at a coarser one). None: the session's."""

    resolution_um: float | None = None
    on: str | os.PathLike | None = None


def target_grid(saved: session.Session, to: str, target: Target, geometry: Geometry) -> Volume:
    """The grid an apply writes on (see :class:`Target`)."""
    if to == "atlas":
        if target.on is not None:
            raise CcfAlignError(
                "--on names a sample-side grid: use it with --to sample (for the atlas at "
                "another voxel size, give --resolution)."
            )
        grid = saved.atlas.grid()
        return grid if target.resolution_um is None else apply.at_resolution(
            grid, target.resolution_um)  # fmt: skip
    if target.resolution_um is not None:
        raise CcfAlignError(
            "--resolution sets the atlas grid: use it with --to atlas (for another grid of "
            "the sample, give --on FILE)."
        )
    if target.on is None:
        return saved.moving.grid()
    grid = grid_of_file(saved, target.on, geometry)
    check_same_tissue(grid, saved.moving.grid())
    return grid


def grid_of_file(saved: session.Session, path, geometry: Geometry) -> Volume:
    """Where the voxels of a sample-side file are (an OME-Zarr's full level read from its
    metadata alone; other files read), with the session's geometry unless told otherwise."""
    rec = saved.moving
    size = geometry.voxel_size_um or rec.voxel_size_um
    code, style = geometry.orientation or rec.orientation, geometry.style or rec.style
    if io.suffix_of(path) in io.ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        return omezarr.placement(io.store_of(path), size, code, style)
    volume = session.read_input(path, size, code, style)
    return Volume.grid(volume.shape, volume.affine, volume.name, volume.world_axes)


def apply_to_image(
    saved: session.Session,
    folder: Path,
    path: str | os.PathLike,
    to: str,
    labels: bool,
    geometry: Geometry = Geometry(),
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
    target: Target = Target(),
    out: str | os.PathLike | None = None,
) -> Volume | Path:
    """The image at ``path`` mapped through the session's result into ``to``'s space.

    With ``out`` an OME-Zarr path, the result is written there slab by slab (never whole in
    memory) and the path is returned; otherwise the Volume.
    """
    image, labels = read_source(saved, folder, path, to, labels, geometry, cache, base_url)
    grid = target_grid(saved, to, target, geometry)
    if out is not None and io.suffix_of(out) in io.ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        slabs = apply.map_volume_slabs(saved.result, image, to, grid, labels, omezarr.PLANES)
        named = Volume.grid(grid.shape, grid.affine, f"{image.name} (in {to})", grid.world_axes)
        return omezarr.write_slabs(out, named, image.data.dtype, slabs, labels)
    return apply.map_volume(saved.result, image, to, grid, grid, labels)


def read_source(saved, folder, path, to, labels, geometry, cache=None, base_url=None):
    """``(image, labels?)``: what an apply maps, read as the direction needs it."""
    if to == "atlas":
        image = read_for_atlas(saved, path, geometry)
        check_same_tissue(image, saved.moving.grid())
        return image, labels
    return read_for_sample(saved, folder, path, labels, cache, base_url)


@dataclass(frozen=True)
class MappedPoints:
    """Points mapped through a session: the table to write and a note on what was left out."""

    table: apply.PointsTable
    columns: dict[str, list[str]]
    note: str = ""


def apply_to_points(
    saved: session.Session,
    path: str | os.PathLike,
    to: str,
    frame: str,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
    regions: bool = True,
) -> MappedPoints:
    """A CSV of points mapped into ``to``'s space, with the region under each atlas point.

    With ``regions`` (mapping to the Allen atlas) the annotation must load: a failure is
    raised, naming ``--no-regions`` for the coordinates alone, rather than a table quietly
    missing its region columns.
    """
    result = saved.result
    if to == "sample":
        table = apply.read_points_csv(path, saved.atlas.grid(), frame)
        points = apply.points_to_sample(result, table.world_ras)
        return MappedPoints(table, apply.sample_columns(points, saved.moving.grid()))
    table = apply.read_points_csv(path, saved.moving.grid(), frame)
    points = apply.points_to_atlas(result, table.world_ras)
    annotation = structures = resolution = None
    note = ""
    if saved.atlas.kind in ("allen", "brainglobe"):  # an atlas with named regions
        resolution = saved.atlas.resolution_um
        if regions:
            try:
                _, annotation, structures = session.read_fixed(saved, None, cache, base_url)
            except CcfAlignError as exc:
                raise type(exc)(
                    f"{str(exc).rstrip('.')}; or pass --no-regions to write the points' "
                    "coordinates without their regions."
                ) from None
        else:
            note = "Region columns left out (--no-regions)."
    columns = apply.atlas_columns(points, resolution, annotation, structures)
    return MappedPoints(table, columns, note)
