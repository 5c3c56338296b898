"""A whole run without a GUI: read the sample, load the atlas, register, save the session.

The command line (``register``, ``replay``, ``demo``) and the batch runner call
:func:`register_volume` / :func:`register_file`; the Register widget calls the same
:func:`.pipeline.run` and :func:`.session.save`. A :class:`Recipe` is what a run
does independently of the brain, so it can be replayed on another one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from napari_ccf_align.core import align, io
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import CcfAlignError, VoxelSizeError
from napari_ccf_align.core.progress import CancelToken, ProgressCallback, ignore_progress
from napari_ccf_align.core.register import methods, pipeline, prepare, rigid, syn
from napari_ccf_align.core.register.result import scale_note
from napari_ccf_align.core.results import report
from napari_ccf_align.core.runs import session
from napari_ccf_align.core.volume import Volume


@dataclass(frozen=True)
class Recipe:
    """What a run does, apart from which brain it runs on.

    Parameters
    ----------
    method : str
        One of :data:`.methods.METHODS`.
    state : AlignmentState
        Hand alignment (rotation in degrees about R, A, S; flips; crop in file
        voxel indices). Its shift is replaced when ``centre`` is set.
    centre : bool
        Shift the sample so its tissue centre lands on the atlas's (keeping the
        rotation): what "centre on atlas" does in the Align widget.
    rigid_settings, syn_settings : RigidSettings, SynSettings
        Engine settings.
    atlas_resolution_um : int
        Allen CCF resolution (10, 25, 50 or 100 µm).
    voxel_size_um : tuple of float or None
        Sample voxel size (µm, file array axis order); None: the file header's.
    orientation : str or None
        Sample orientation code; None: the file header's.
    style : {"nibabel", "brainglobe"}
        How ``orientation`` is written.
    """

    method: str = "rigid"
    state: AlignmentState = field(default_factory=AlignmentState)
    centre: bool = True
    rigid_settings: rigid.RigidSettings = field(default_factory=rigid.RigidSettings)
    syn_settings: syn.SynSettings = field(
        default_factory=lambda: syn.SynSettings(
            working_resolution_um=methods.DEFAULT_WORKING_RESOLUTION_UM
        )
    )
    atlas_resolution_um: int = 25
    voxel_size_um: tuple[float, ...] | None = None
    orientation: str | None = None
    style: str = "nibabel"


def recipe_of(s: session.Session) -> Recipe:
    """The recipe a saved session ran with (to replay it on another brain)."""
    return Recipe(
        s.method,
        s.state,
        s.centred,
        s.rigid_settings or rigid.RigidSettings(),
        s.syn_settings or Recipe().syn_settings,
        round(s.atlas.resolution_um),
        s.moving.voxel_size_um,
        s.moving.orientation,
        s.moving.style,
    )


@dataclass(frozen=True)
class Fixed:
    """The fixed side of a run: template, optional annotation and where they came from."""

    template: Volume
    annotation: Volume | None = None
    source: str = ""
    structures: object | None = None  # the annotation's StructureTable (for volumes.csv)
    hemispheres: Volume | None = None  # the atlas's own (1 left, 2 right); None: the midline


#: How far a new file's header may differ from a session's voxel size and still be taken
#: for the same acquisition settings (relative).
VOXEL_SIZE_TOLERANCE = 0.01


def check_replay_geometry(recipe: Recipe, path: str | os.PathLike) -> None:
    """Refuse to replay a session's voxel size on a file whose header says another one.

    A session registered with an explicit voxel size carries it to the next brain; when
    that brain's own header gives a different size, which is right cannot be guessed.
    Pass the voxel size for the new file to say.
    """
    if recipe.voxel_size_um is None:
        return  # the session used the header's; so will the new file
    header, _, _ = io.peek(path)
    if header is None or len(header) != len(recipe.voxel_size_um):
        return  # a TIFF without a voxel size: the session's is the only one there is
    given = np.asarray(recipe.voxel_size_um, float)
    if np.allclose(header, given, rtol=VOXEL_SIZE_TOLERANCE):
        return
    shown = " × ".join(f"{v:g}" for v in header)
    saved = " ".join(f"{v:g}" for v in given)
    raise VoxelSizeError(
        f"{Path(path).name}'s header says its voxels are {shown} µm, but the session was "
        f"registered with --voxel-size {saved}: give --voxel-size for this file to say which "
        "is right (nothing was run)."
    )


def load_fixed(resolution_um: int, cache=None, base_url=None, on_progress=ignore_progress):
    """The Allen CCF at ``resolution_um`` with its annotation, from the cache (or downloaded)."""
    from napari_ccf_align.core.io import atlas

    a = atlas.load_atlas(
        int(resolution_um), annotation=True, cache=cache, base_url=base_url, on_progress=on_progress
    )
    source = f"Allen CCF v3 ({base_url or os.environ.get(atlas.ENV_BASE_URL) or atlas.DEFAULT_BASE_URL}), cached in {atlas.cache_dir(cache)}"
    return Fixed(a.template, a.annotation, source, a.structures)


def load_fixed_brainglobe(name: str, folder=None) -> Fixed:
    """A BrainGlobe atlas (``brainglobe-atlasapi``) with its annotation, hemispheres and
    structure tree, from BrainGlobe's folder (downloaded by BrainGlobe when missing)."""
    from napari_ccf_align.core.io import brainglobe

    a = brainglobe.load_brainglobe_atlas(name, folder)
    source = f"BrainGlobe atlas {name} v{a.version} (brainglobe-atlasapi)"
    return Fixed(a.template, a.annotation, source, a.structures, a.hemispheres)


def load_fixed_file(
    path: str | os.PathLike,
    orientation: str | None = None,
    voxel_size_um=None,
    style: str = "nibabel",
    labels: str | os.PathLike | None = None,
) -> Fixed:
    """A lab's own template (any reference volume) as the fixed side, with optional labels
    on its grid.

    The file is read as its header says unless ``orientation`` (and ``voxel_size_um``)
    restate it, as for a sample; a TIFF needs both. Labels must lie on the template's grid.
    """
    template = session.read_input(path, voxel_size_um, orientation, style)
    if template.ndim != 3:
        raise CcfAlignError(
            f"{Path(path).name} is {template.ndim}D: a template must be a 3D volume."
        )
    stem = io.file_stem(path)
    meta = {**template.metadata, "atlas": "own template", "atlas_title": stem}
    template = replace(template, name=stem, metadata=meta)
    annotation = None
    if labels is not None:
        annotation = session.read_input(labels, voxel_size_um, orientation, style)
        if annotation.shape != template.shape or not np.allclose(
            annotation.affine, template.affine, atol=1e-6
        ):
            raise CcfAlignError(
                f"{Path(labels).name} is not on the grid of {Path(path).name} (shape "
                f"{annotation.shape} against {template.shape}): give the labels of this template."
            )
    if annotation is not None:
        annotation = replace(annotation, metadata={**annotation.metadata, **meta})
    return Fixed(template, annotation, f"own template {Path(path).resolve()}")


def fixed_of_session(
    saved: session.Session, folder, cache=None, base_url=None, brainglobe_folder=None
) -> Fixed:
    """The fixed side a saved session registered to: the Allen CCF from the cache, or the
    session's own embedded template (a replay must not swap it for the Allen atlas)."""
    if saved.atlas.kind == "allen":
        return load_fixed(round(saved.atlas.resolution_um), cache, base_url)
    if saved.atlas.kind == "brainglobe":
        fixed = load_fixed_brainglobe(saved.atlas.name, brainglobe_folder)
        session.check_atlas_grid(saved.atlas, fixed.template)
        return fixed
    template, annotation, structures = session.read_fixed(saved, folder, cache, base_url)
    return Fixed(template, annotation, saved.atlas.source, structures)


def register_volume(
    moving: Volume,
    record: session.InputRecord,
    fixed: Fixed,
    recipe: Recipe,
    out: str | os.PathLike,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    write_report: bool = True,
) -> session.Session:
    """Register ``moving`` to ``fixed`` as ``recipe`` says and save the session to ``out``.

    Returns the session as saved. Nothing is written when the run fails or is
    cancelled (an earlier session at ``out`` is kept).
    """
    session.check_session_target(out)
    prepare.check_registrable(moving)  # before centring, which needs a 3D volume
    t0 = time.perf_counter()
    state = recipe.state
    if recipe.centre:
        state = align.centre_on_atlas(state, moving, fixed.template)
    align.check_crop(moving, state.crop)
    result = pipeline.run(
        fixed.template,
        moving,
        recipe.method,
        state,
        recipe.rigid_settings,
        recipe.syn_settings,
        on_progress=on_progress,
        cancel=cancel,
    )
    t_run = time.perf_counter() - t0
    warped = result.warp(fixed.template, moving)  # once, for the figures and the session
    figures = report.stage_figures(result, fixed.template, moving, state, warped, fixed.annotation)
    s = session.Session(
        method=recipe.method,
        atlas=session.record_atlas(fixed.template, fixed.source),
        moving=record,
        state=state,
        rigid_settings=recipe.rigid_settings if recipe.method != "syn" else None,
        syn_settings=recipe.syn_settings if "syn" in recipe.method else None,
        result=result,
        centred=recipe.centre,
        figures=figures,
        timings={"registration_s": round(t_run, 3)},
        created=session.now(),
        versions=session.versions(),
    )
    if cancel is not None:
        cancel.raise_if_cancelled("The run")
    session.save(
        out,
        s,
        fixed.template,
        moving,
        fixed.annotation,
        write_report,
        warped,
        fixed.structures,
        fixed.hemispheres,
    )
    return replace(s, timings={**s.timings, "total_s": round(time.perf_counter() - t0, 3)})


def register_file(
    path: str | os.PathLike,
    recipe: Recipe,
    out: str | os.PathLike,
    fixed: Fixed | None = None,
    cache=None,
    base_url=None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
    write_report: bool = True,
) -> session.Session:
    """Read the sample at ``path`` with the recipe's geometry and run :func:`register_volume`."""
    session.check_session_target(out)
    level = 0
    if io.suffix_of(path) in io.ZARR_SUFFIXES and io.exists(path):
        from napari_ccf_align.core.io import omezarr

        atlas_um = (
            float(fixed.template.spacing.min()) * 1000.0
            if fixed is not None
            else float(recipe.atlas_resolution_um)
        )
        level = omezarr.level_for(path, working_resolution_um(recipe, atlas_um))
    moving = session.read_input(
        path, recipe.voxel_size_um, recipe.orientation, recipe.style, level=level
    )
    record = session.record_input(
        moving, path, recipe.voxel_size_um, recipe.orientation, recipe.style
    )
    if fixed is None:
        fixed = load_fixed(recipe.atlas_resolution_um, cache, base_url, on_progress)
    return register_volume(moving, record, fixed, recipe, out, on_progress, cancel, write_report)


def working_resolution_um(recipe: Recipe, atlas_um: float) -> float:
    """The finest resolution (µm) a run's engines work at: the atlas's voxel size
    (``atlas_um``), or the SyN working resolution when finer."""
    syn_um = recipe.syn_settings.working_resolution_um if "syn" in recipe.method else None
    return min(atlas_um, float(syn_um)) if syn_um else atlas_um


def quiet_dipy_log() -> None:
    """Silence DIPY's per-level INFO lines (it prints them to stdout); progress says it."""
    import logging

    import dipy.utils.logging  # noqa: F401  (configures DIPY's logger, at level INFO)

    logging.getLogger("dipy").setLevel(logging.WARNING)


def summary(s: session.Session, out: str | os.PathLike) -> str:
    """One line: method, seconds, final metric, similarity before and after, where it went."""
    r = s.result
    figures = list(s.figures.values())
    ncc = ""
    if figures and report.NCC in figures[0]:
        ncc = (
            f"; NCC over tissue (clipped) {figures[0][report.NCC]:.3f} -> "
            f"{figures[-1][report.NCC]:.3f}"
        )
    seconds = s.timings.get("registration_s", r.seconds)
    scale = scale_note(r.matrix)
    return (
        f"{s.method}: {seconds:.1f} s, final metric {r.final_metric:.5g}{ncc}"
        + (f"; {scale}" if scale else "")
        + f"; session in {Path(out)}"
    )
