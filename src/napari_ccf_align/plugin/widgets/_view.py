"""Viewer set-up shared by the widgets: anatomical axis labels, coronal view with dorsal up."""

from __future__ import annotations

import itertools

import napari
from magicgui.widgets import Container, Label
from qtpy.QtCore import QSize, Qt, QTimer
from qtpy.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from napari_ccf_align.plugin.layer_data import AXIS_LABELS, VOLUME_KEY


def row(*widgets) -> Container:
    """magicgui widgets side by side, without labels (e.g. a row of buttons)."""
    return Container(widgets=list(widgets), layout="horizontal", labels=False)


def wrapping(label: Label) -> Label:
    """``label`` wrapping its text over the dock's whole width (magicgui's labels keep their
    text's width: a wrapped sentence would stand in a column a few words wide)."""
    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    return label


class _VerticalScrollArea(QScrollArea):
    """Scrolls up and down only; asks for the content's full width (after styling)."""

    def __init__(self) -> None:
        super().__init__()
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:
        inner = self.widget().minimumSizeHint() if self.widget() else QSize(0, 0)
        extra = self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        return QSize(inner.width() + extra, 120)


def scrollable(widget: QWidget, content: QWidget) -> None:
    """Put ``content`` inside ``widget`` in a scroll area, so a short dock stays usable."""
    area = _VerticalScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(content)
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(area)


def camera(viewer: napari.viewer.Viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def anatomical_view(viewer: napari.viewer.Viewer) -> None:
    """Label the world axes anatomically and show a coronal slice, dorsal up, right on the right.

    napari's world axes are (R, A, S). The 2D view slices along A and shows S
    vertically (increasing upwards) and R horizontally (increasing to the right),
    as seen from behind the brain. Only the camera changes; no layer is touched.
    Done once per viewer: later calls leave the user's choice of view alone.
    """
    if viewer.dims.ndim < 3 or tuple(viewer.dims.axis_labels[-3:]) == AXIS_LABELS:
        return  # set once; after that the view is the user's
    labels = list(viewer.dims.axis_labels)
    labels[-3:] = AXIS_LABELS
    viewer.dims.axis_labels = labels
    n = viewer.dims.ndim
    viewer.dims.order = (*range(n - 3), n - 2, n - 1, n - 3)
    camera(viewer).orientation = ("away", "up", "right")


def follow_anatomy(viewer: napari.viewer.Viewer) -> None:
    """Give the viewer the anatomical view now if it holds a layer placed by this plugin,
    else when the first such layer arrives.

    Doing it when a widget opens (not when a registration adds its result) keeps
    napari's first camera set-up, which imports SciPy's rotations, off a run's end.
    """

    def ours(layer) -> bool:
        return VOLUME_KEY in getattr(layer, "metadata", {})

    if any(ours(layer) for layer in viewer.layers):
        anatomical_view(viewer)

    def on_inserted(event) -> None:
        if ours(event.value):
            anatomical_view(viewer)

    viewer.layers.events.inserted.connect(on_inserted)


#: Set on each step widget (Load, Align, Register), to its docking order, so that their docks
#: can find each other.
STEP_PROPERTY = "ccf_align_step"


def _dock_of(widget: QWidget) -> QDockWidget | None:
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def _step_order(dock: QDockWidget) -> int | None:
    """The docking order of the step widget a dock holds (None: it holds none)."""
    inner = dock.widget()
    if inner is None:
        return None
    for w in (inner, *inner.findChildren(QWidget)):
        order = w.property(STEP_PROPERTY)
        if order is not None:
            return int(order)
    return None


#: What napari appends to a plugin dock's name.
_PLUGIN_SUFFIX = " (napari-ccf-align)"


def retitle(dock: QDockWidget, title: str) -> None:
    """Call ``dock`` ``title`` in its tab and in its title bar (napari writes the dock's
    name followed by the plugin's there: "Register (napari-ccf-align)")."""
    dock.setWindowTitle(title)
    bar = dock.titleBarWidget()
    if bar is None:
        return
    for label in bar.findChildren(QLabel):
        if label.text().endswith(_PLUGIN_SUFFIX):
            label.setText(title)


def tabify_with_steps(widget: QWidget) -> bool:
    """Put ``widget``'s dock in one tab group with the other step widgets' docks.

    napari's Plugins menu docks each widget below the last, and three tall widgets
    in one column leave each about 100 pixels. As tabs, each gets the whole height.
    Every step dock joins the group of the first one docked (one anchor, so no dock
    is ever tabified into its own group); the new one is brought to the front.
    Returns whether it joined a group.
    """
    dock = _dock_of(widget)
    title = getattr(widget, "step_title", "")
    if dock is not None and title:  # the step ("Align and crop"), not "… (napari-ccf-align)"
        retitle(dock, title)  # (the first dock too, alone or as the group's first tab)
        # napari builds a new title bar when a dock floats or docks again
        dock.topLevelChanged.connect(
            lambda _=None: QTimer.singleShot(0, lambda: retitle(dock, title))
        )
    main = dock.parentWidget() if dock is not None else None
    if not isinstance(main, QMainWindow):
        return False
    steps = sorted(
        (order, id(d), d)
        for d in main.findChildren(QDockWidget)
        if d is not dock and not d.isHidden() and (order := _step_order(d)) is not None
    )
    if not steps:
        return False
    anchor = steps[0][2]
    if anchor not in main.tabifiedDockWidgets(dock):
        main.tabifyDockWidget(anchor, dock)
    # Qt puts a tabified dock right after the one it joins: re-joining each step after the
    # one before it lays the tabs out in docking order (Load, Align, Register, ...)
    ordered = [d for _, _, d in sorted([*steps, (_step_order(dock), id(dock), dock)])]
    for before, after in itertools.pairwise(ordered):
        main.tabifyDockWidget(before, after)
    dock.show()
    dock.raise_()
    return True


class StepWidget(QWidget):
    """Base of the Load, Align and Register widgets: they dock as tabs of one group."""

    _docked = 0  # step widgets made so far in this process (their docking order)
    step_title = ""  # the dock's tab title

    def __init__(self) -> None:
        super().__init__()
        StepWidget._docked += 1
        self.setProperty(STEP_PROPERTY, StepWidget._docked)
        # napari puts a plugin widget in its dock after building it: join the tabs then
        QTimer.singleShot(0, lambda: tabify_with_steps(self))
