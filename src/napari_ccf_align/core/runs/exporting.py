"""A saved session exported for other tools: brainreg's folder (:mod:`.results.brainreg`)."""

from __future__ import annotations

import os
from pathlib import Path

from napari_ccf_align.core.errors import OutputError
from napari_ccf_align.core.results import brainreg, volumes
from napari_ccf_align.core.runs import headless, session


def export_brainreg(
    saved: session.Session,
    folder: str | os.PathLike,
    out: str | os.PathLike,
    cache=None,
    base_url=None,
    brainglobe_folder=None,
) -> Path:
    """Write the folder brainreg would have written for ``saved`` (see :mod:`.results.brainreg`).

    The atlas is reloaded as the session recorded it (the Allen CCF from the cache, a
    BrainGlobe atlas through BrainGlobe's API) and the sample from its file or the
    session's embedded copy.
    """
    rec = saved.atlas
    name, layout = brainreg.atlas_identity(rec.kind, rec.name, rec.resolution_um)
    fixed = headless.fixed_of_session(saved, folder, cache, base_url, brainglobe_folder)
    if fixed.annotation is None:
        raise OutputError(
            f"The atlas {name} has no annotation, which brainreg's folder is made of: load "
            "the atlas with its annotation and export again."
        )
    sample = session.read_moving(saved, folder)
    hemispheres = fixed.hemispheres
    if hemispheres is None:
        hemispheres = volumes.hemispheres(fixed.template)
    settings = {
        "session": str(Path(folder).absolute()),
        "method": saved.method,
        "image": saved.moving.path or "",
        "atlas_version": rec.version,
        "versions": saved.versions,
    }
    return brainreg.export(
        out,
        saved.result,
        name,
        layout,
        fixed.template,
        sample,
        fixed.annotation,
        hemispheres,
        fixed.structures,
        settings,
    )
