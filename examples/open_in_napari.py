"""Open napari with every dock of the plugin, in step order, and the simulated brain.

Run: ``.venv/bin/python examples/open_in_napari.py`` (needs a screen; or ``xvfb-run -a``).
"""

import napari

from napari_ccf_align.plugin.demo import open_demo

viewer = napari.Viewer()
open_demo(viewer)
napari.run()
