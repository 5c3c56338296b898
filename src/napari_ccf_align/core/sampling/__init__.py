"""The one sampler: every volume this package resamples goes through here.

``trilinear`` is the previews' compiled kernel (SimpleITK's rules) for affine maps of
indices, ``fused`` the warp kernel of results (a linear map, a coarse displacement field
and the image in one pass), ``maps`` reads fields at points (ITK's edge rule),
``rows`` finds where a box lands along grid rows, ``warm`` compiles the kernels off
the GUI thread.
"""

from napari_ccf_align.core.sampling import fused
from napari_ccf_align.core.sampling.maps import field_at, itk_edge, over_grid
from napari_ccf_align.core.sampling.rows import row_spans, spans_mask
from napari_ccf_align.core.sampling.trilinear import SMALL_GRID_VOXELS, index_map, linear, warm_up
from napari_ccf_align.core.sampling.warm import ready, warm_up_all, warm_up_in_background

__all__ = [
    "SMALL_GRID_VOXELS",
    "field_at",
    "fused",
    "index_map",
    "itk_edge",
    "linear",
    "over_grid",
    "ready",
    "row_spans",
    "spans_mask",
    "warm_up",
    "warm_up_all",
    "warm_up_in_background",
]
