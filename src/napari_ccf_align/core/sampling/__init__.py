"""The one sampler: every volume this package resamples goes through here.

``trilinear`` is the previews' compiled kernel (SimpleITK's rules) for affine maps of
indices, ``fused`` the warp kernel of results (a linear map, a coarse displacement field
and the image in one pass), ``maps`` reads fields at points (ITK's edge rule),
``rows`` finds where a box lands along grid rows, ``warm`` compiles the kernels off
the GUI thread, ``cache`` finds numba a writable folder for them.
"""

from napari_ccf_align.core.sampling.cache import ensure_writable_cache

ensure_writable_cache()  # before numba is imported: it reads the folder then

from napari_ccf_align.core.sampling import fused  # noqa: E402
from napari_ccf_align.core.sampling.maps import field_at, itk_edge, over_grid  # noqa: E402
from napari_ccf_align.core.sampling.rows import row_spans, spans_mask  # noqa: E402
from napari_ccf_align.core.sampling.trilinear import SMALL_GRID_VOXELS, index_map, linear, warm_up  # noqa: E402
from napari_ccf_align.core.sampling.warm import ready, warm_up_all, warm_up_in_background  # noqa: E402

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
