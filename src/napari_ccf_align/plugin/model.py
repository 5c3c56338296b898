"""The one alignment state a viewer works on, with undo/redo. No Qt, no numerics.

The Align widget edits it, the Register widget reads it when a run starts, the
session saves it. Nobody keeps a second copy: they all hold this model.
"""

from __future__ import annotations

import weakref

from psygnal import Signal

from napari_ccf_align.core.align import AlignmentState


class AlignmentModel:
    """An :class:`AlignmentState` plus which layers it aligns, with a history.

    ``changed`` is emitted with the new state on every change. While a control
    is dragged, call :meth:`set` with ``record=False`` and :meth:`commit` on
    release, so one drag is one undo step.
    """

    changed = Signal(object)
    #: ``(session, moving layer name)`` when a saved session was loaded into the viewer
    session_loaded = Signal(object)
    #: A registration result was put on screen (its layer's name): the pickers follow it.
    result_finished = Signal(str)

    def __init__(self, limit: int = 200):
        self._state = AlignmentState()
        self._undo: list[AlignmentState] = []
        self._redo: list[AlignmentState] = []
        self._committed = self._state
        self.limit = limit
        self.moving_layer: str | None = None

    @property
    def state(self) -> AlignmentState:
        """The current state."""
        return self._state

    def set(self, state: AlignmentState, record: bool = True) -> None:
        """Replace the state; ``record=False`` for intermediate drag values."""
        if state == self._state:
            if record:
                self.commit()
            return
        self._state = state
        if record:
            self.commit()
        self.changed.emit(state)

    def commit(self) -> None:
        """Make the current state one undo step (if it differs from the last one)."""
        if self._state != self._committed:
            self._undo.append(self._committed)
            del self._undo[: -self.limit]
            self._redo.clear()
            self._committed = self._state

    def undo(self) -> bool:
        """Go back one step; False when there is nothing to undo."""
        self.commit()
        if not self._undo:
            return False
        self._redo.append(self._state)
        self._state = self._committed = self._undo.pop()
        self.changed.emit(self._state)
        return True

    def redo(self) -> bool:
        """Go forward one step; False when there is nothing to redo."""
        if not self._redo:
            return False
        self._undo.append(self._state)
        self._state = self._committed = self._redo.pop()
        self.changed.emit(self._state)
        return True

    def reset(self) -> None:
        """Back to identity, no crop (undoable)."""
        self.set(AlignmentState())


_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_for(viewer) -> AlignmentModel:
    """The alignment model of a viewer (created on first use)."""
    if viewer not in _MODELS:
        _MODELS[viewer] = AlignmentModel()
    return _MODELS[viewer]
