"""One registration as the user asks for it: a SimpleITK stage, a DIPY SyN stage, or both.

The Register widget and the command line both call :func:`run`, so a method means
the same thing in either.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from napari_ccf_align.core import checks
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.progress import CancelToken, ProgressCallback, ignore_progress
from napari_ccf_align.core.register import child, prepare, rigid, syn
from napari_ccf_align.core.register.methods import METHODS
from napari_ccf_align.core.volume import Volume


def run(
    fixed: Volume,
    moving: Volume,
    method: str,
    state: AlignmentState | None = None,
    rigid_settings: rigid.RigidSettings | None = None,
    syn_settings: syn.SynSettings | None = None,
    start: np.ndarray | None = None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    isolate_syn: bool = False,
) -> rigid.RigidResult | syn.SynResult:
    """Run ``method`` and return its result (the SyN result when SyN runs, holding the
    linear stage's result as ``linear``).

    Parameters
    ----------
    method : str
        One of the names in :data:`METHODS`. ``"rigid+syn"`` and ``"affine+syn"``
        run SimpleITK first and start SyN from its ``matrix`` alone (the hand
        alignment is inside it); ``"rigid+affine+syn"`` runs rigid, then affine from the
        rigid result, then SyN (ANTs' ``SyN`` recipe); ``"syn"`` starts SyN from
        ``start``, or from the state's hand alignment when ``start`` is None.
    start : numpy.ndarray, optional
        A moving -> atlas map (RAS mm) to start from, e.g. the last result's ``matrix``.
    isolate_syn : bool
        Run the SyN stage in a child process (:mod:`.isolated`), so that its Python
        loop never holds the calling process's GIL (a GUI stays responsive).
    """
    checks.choice(method, "method", [name for name, _ in METHODS])
    prepare.check_registrable(moving, fixed.ndim)
    state = state or AlignmentState()
    cancel = cancel or CancelToken()
    *linears, last = method.split("+")
    deformable = last == "syn"
    if not deformable:
        linears.append(last)
    if deformable:  # before any work, not after the linear stage
        syn.check_working_resolution(
            fixed, (syn_settings or syn.SynSettings()).working_resolution_um
        )

    def deform(first: np.ndarray) -> syn.SynResult:
        if not isolate_syn:
            return syn.register(fixed, moving, first, syn_settings, state, on_progress, cancel)
        return child.call(
            "napari_ccf_align.core.register.syn.register",
            fixed,
            moving,
            first,
            syn_settings,
            state,
            on_progress=on_progress,
            cancel=cancel,
        )

    if not linears:  # "syn" alone
        return deform(state.rigid.matrix() if start is None else start)
    base = rigid_settings or rigid.RigidSettings()
    result = None
    for k, transform in enumerate(linears):  # each linear stage starts where the last ended
        settings = base
        if settings.transform != transform:
            settings = rigid.RigidSettings.from_dict({**base.to_dict(), "transform": transform})
        begin = start if k == 0 else result.matrix
        result = rigid.register(fixed, moving, state, settings, None, on_progress, cancel, begin)
        cancel.raise_if_cancelled("The registration")
    if not deformable:
        return result
    return dataclasses.replace(deform(result.matrix), linear=result, recipe=method)
