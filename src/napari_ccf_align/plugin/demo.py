"""The plugin's demo in a viewer: every dock in step order and the simulated brain loaded."""

from __future__ import annotations

import time

import napari

from napari_ccf_align.plugin.widgets._view import anatomical_view

#: The docks, in step order, by their manifest display names.
DOCKS = (
    "Load volume and atlas",
    "Initial alignment and crop",
    "Register",
    "Inspect the result",
    "Session",
)


def open_demo(viewer: napari.Viewer):
    """Dock every widget as tabs of one group, load the simulated brain; the Align dock."""
    docks = [
        viewer.window.add_plugin_dock_widget("napari-ccf-align", name, tabify=k > 0)[1]
        for k, name in enumerate(DOCKS)
    ]
    align = docks[1]
    viewer.open_sample("napari-ccf-align", "simulated_brain")
    anatomical_view(viewer)
    viewer.reset_view()
    from qtpy.QtCore import QTimer

    # the next step, the Align tab, in front: after the docks have joined their tab group
    QTimer.singleShot(0, lambda: align.parent().raise_())
    return align


def screenshot_when_ready(viewer: napari.Viewer, align, path: str, timeout_s: float = 30) -> None:
    """Wait for the first preview (at most ``timeout_s``), then save a screenshot of the window."""
    from qtpy.QtWidgets import QApplication

    deadline = time.time() + timeout_s
    align.request_preview()
    while align.worker is not None and time.time() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
    for _ in range(10):
        QApplication.processEvents()
    viewer.screenshot(path, canvas_only=False)
