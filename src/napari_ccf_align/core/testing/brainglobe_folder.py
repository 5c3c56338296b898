"""A BrainGlobe atlas folder made from volumes at hand, for tests and offline examples.

BrainGlobe's atlas API (1.x - 2.x) reads an installed atlas from
``<brainglobe_dir>/<name>_v<version>/``: ``metadata.json``, ``structures.json``,
``reference.tiff``, ``annotation.tiff``, ``hemispheres.tiff`` and ``meshes/``, with the
arrays in BrainGlobe's ``asr`` orientation. :func:`write_brainglobe_atlas` writes that layout,
so the API can be exercised with no network.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tifffile

from napari_ccf_align.core import frames
from napari_ccf_align.core.io.atlas import Atlas
from napari_ccf_align.core.results import volumes
from napari_ccf_align.core.volume import Volume

#: BrainGlobe's array orientation (origin corner), and the same in nibabel's spelling.
BRAINGLOBE_ORIENTATION = "asr"


def in_brainglobe_layout(volume: Volume) -> np.ndarray:
    """``volume``'s voxels with array axes in BrainGlobe's ``asr`` layout."""
    code = frames.parse_orientation(BRAINGLOBE_ORIENTATION, "brainglobe")
    return np.ascontiguousarray(volume.reoriented(code).data)


def write_brainglobe_atlas(
    folder: str | os.PathLike,
    name: str,
    atlas: Atlas,
    version: str = "1.2",
    symmetric: bool = False,
) -> Path:
    """Write ``atlas`` (template, annotation, structures) as BrainGlobe atlas ``name``.

    Parameters
    ----------
    folder : path-like
        The BrainGlobe folder (``brainglobe_dir``); the atlas goes in ``name_v<version>``.
    name : str
        Atlas name, e.g. ``"allen_mouse_100um"``.
    atlas : Atlas
        RAS volumes; its hemisphere map, or one split at the midline.
    version : str
        ``"major.minor"``.
    symmetric : bool
        Write no hemisphere file (BrainGlobe then splits the atlas itself).

    Returns
    -------
    Path
        The atlas's folder.
    """
    if atlas.annotation is None or atlas.structures is None:
        raise ValueError("a BrainGlobe atlas needs an annotation and its structures")
    out = Path(folder) / f"{name}_v{version}"
    (out / "meshes").mkdir(parents=True, exist_ok=True)
    template = atlas.template
    turned = template.reoriented(frames.parse_orientation(BRAINGLOBE_ORIENTATION, "brainglobe"))
    reference = np.ascontiguousarray(turned.data)
    spacing_um = [float(s) * 1000.0 for s in frames.spacing_of(turned.affine)]
    tifffile.imwrite(out / "reference.tiff", reference.astype(np.uint16))
    tifffile.imwrite(
        out / "annotation.tiff", in_brainglobe_layout(atlas.annotation).astype(np.uint32)
    )
    if not symmetric:
        hemis = atlas.hemispheres
        if hemis is None:
            hemis = volumes.hemispheres(template)
        tifffile.imwrite(out / "hemispheres.tiff", in_brainglobe_layout(hemis).astype(np.uint8))
    structures = atlas.structures.to_brainglobe()
    (out / "structures.json").write_text(json.dumps(structures), encoding="utf-8")
    metadata = {
        "name": name.rsplit("_", 1)[0],
        "citation": "unpublished (made by napari-ccf-align's tests)",
        "atlas_link": "",
        "species": "Mus musculus",
        "symmetric": symmetric,
        "resolution": spacing_um,
        "orientation": BRAINGLOBE_ORIENTATION,
        "version": version,
        "shape": list(reference.shape),
        "transform_to_bg": np.eye(4).tolist(),
        "additional_references": [],
    }
    (out / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return out
