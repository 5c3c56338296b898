"""Open napari with the plugin's three widgets and the simulated brain.

Run: ``.venv/bin/python examples/open_in_napari.py`` (needs a screen; or ``xvfb-run -a``).
"""

import napari

viewer = napari.Viewer()
viewer.window.add_plugin_dock_widget("napari-ccf-align", "Load volume and atlas")
viewer.window.add_plugin_dock_widget("napari-ccf-align", "Initial alignment and crop", tabify=True)
viewer.window.add_plugin_dock_widget("napari-ccf-align", "Register", tabify=True)
viewer.open_sample("napari-ccf-align", "simulated_brain")
napari.run()
