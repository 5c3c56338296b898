"""A small atlas at hand, for tests and offline examples: the real Allen 100 µm files when a
folder holds them, else the phantom with two labelled regions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.testing import phantom


def small_atlas(folder: str | os.PathLike | None = None) -> atlas.Atlas:
    """The Allen 100 µm atlas from ``folder`` (``average_template_100.nrrd``,
    ``annotation_100.nrrd``, ``allen_structure_graph.json``), else the phantom whose
    brightest fifth is "Isocortex" (315) and the rest of the tissue "fiber tracts" (1009)."""
    shared = Path(folder) if folder else None
    if shared is not None and (shared / "average_template_100.nrrd").is_file():
        return atlas.load_atlas_files(
            shared / "average_template_100.nrrd",
            shared / "annotation_100.nrrd",
            shared / "allen_structure_graph.json",
        )
    template = phantom.brain_phantom(100)
    grey = template.data.astype(float)
    labels = np.where(grey > np.percentile(grey, 80), 315, np.where(grey > 0, 1009, 0))
    graph = {
        "id": 997,
        "acronym": "root",
        "name": "root",
        "color_hex_triplet": "FFFFFF",
        "children": [
            {"id": 315, "acronym": "Isocortex", "name": "Isocortex", "color_hex_triplet": "70FF71"},
            {"id": 1009, "acronym": "fiber tracts", "name": "fiber tracts",
             "color_hex_triplet": "CCCCCC"},
        ],
    }  # fmt: skip
    return atlas.Atlas(
        100,
        template,
        template.with_data(labels.astype(np.uint32), name="annotation"),
        atlas.StructureTable.from_graph(graph),
    )
