"""napari-ccf-align: register a mouse-brain volume to the Allen CCF v3 in napari."""

__version__ = "0.1.0"
