"""Qt-free core of napari-ccf-align: every number the plugin and the CLI compute.

``errors``, ``progress`` and ``checks`` are the shared protocol; ``frames`` the one
coordinate contract; ``volume`` the array-plus-affine; ``sampling`` the one sampler;
then the rooms of the workflow: ``io``, ``align``, ``register``, ``results``, ``runs``
and ``testing``. Nothing here imports Qt or napari.
"""
