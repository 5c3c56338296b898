"""Qt-free core of napari-ccf-align: geometry, volumes, files, atlas and engines.

Nothing in this package imports Qt or napari, so the command line and the
widgets call exactly the same functions.
"""
