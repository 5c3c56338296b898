"""The initial alignment: the state a user sets by hand, the tools that set it, the previews.

``state`` holds :class:`AlignmentState` and the crop box, ``initialise`` centring and
moments, ``preview`` the coarse and exact previews, ``projections`` the orientation check.
"""

from napari_ccf_align.core.align.initialise import (
    auto_crop,
    centre_of,
    centre_on_atlas,
    match_moments,
    tissue_mask,
    tissue_threshold,
    with_centre,
)
from napari_ccf_align.core.align.previews import (
    Preview,
    box_faces,
    coarse_grid,
    crop_box_edges,
    display_range,
    exact_previews,
    footprint,
    preview,
    preview_with_box,
    resample,
)
from napari_ccf_align.core.align.state import (
    COARSE_MAX_VOXELS,
    AlignmentState,
    CentreMode,
    check_crop,
    crop_between,
    crop_box_corners,
    crop_mask,
    cropped_moving,
)

__all__ = [
    "COARSE_MAX_VOXELS",
    "AlignmentState",
    "CentreMode",
    "Preview",
    "auto_crop",
    "box_faces",
    "centre_of",
    "centre_on_atlas",
    "check_crop",
    "coarse_grid",
    "crop_between",
    "crop_box_corners",
    "crop_box_edges",
    "crop_mask",
    "cropped_moving",
    "display_range",
    "exact_previews",
    "footprint",
    "match_moments",
    "preview",
    "preview_with_box",
    "resample",
    "tissue_mask",
    "tissue_threshold",
    "with_centre",
]
