"""The one sampler: every volume this package resamples goes through here.

``linear`` is the compiled trilinear kernel (SimpleITK's rules) for affine maps of
indices, ``maps`` samples an image through any point map (a registration result's),
``rows`` finds where a box lands along grid rows, ``warm`` compiles the kernels off
the GUI thread.
"""

from napari_ccf_align.core.sampling.maps import field_at, itk_edge, over_grid, sample_on_grid
from napari_ccf_align.core.sampling.rows import row_spans, spans_mask
from napari_ccf_align.core.sampling.trilinear import SMALL_GRID_VOXELS, index_map, linear, warm_up
from napari_ccf_align.core.sampling.warm import ready, warm_up_all, warm_up_in_background

__all__ = [
    "SMALL_GRID_VOXELS",
    "field_at",
    "index_map",
    "itk_edge",
    "linear",
    "over_grid",
    "ready",
    "row_spans",
    "sample_on_grid",
    "spans_mask",
    "warm_up",
    "warm_up_all",
    "warm_up_in_background",
]
