"""The command line's commands: each turns parsed flags into the same core calls the widgets make."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from napari_ccf_align.cli.terminal import TerminalProgress, ctrl_c_cancels
from napari_ccf_align.core.errors import CcfAlignError


def fetch_atlas(args: argparse.Namespace) -> int:
    """Download the atlas into the cache (or check that it is there)."""
    from napari_ccf_align.core.io import atlas

    if args.forget:
        removed = atlas.forget(args.cache, args.forget)
        print(f"Forgot {' and '.join(removed) or 'nothing (not cached)'}.", file=sys.stderr)
    progress = TerminalProgress()
    try:
        a = atlas.load_atlas(
            args.resolution,
            annotation=not args.no_annotation,
            cache=args.cache,
            base_url=args.base_url,
            on_progress=progress,
        )
    finally:
        progress.close()
    print(
        f"Allen CCF v3 at {a.resolution_um} µm ready in {atlas.cache_dir(args.cache)}: "
        f"template {a.template.shape} (R, A, S)"
        + (", annotation and region names" if a.annotation is not None else "")
    )
    return 0


def _recipe(args: argparse.Namespace, base=None):
    """A run recipe from the command line's flags (over ``base``, a saved session's recipe)."""
    from dataclasses import replace

    from napari_ccf_align.core import frames
    from napari_ccf_align.core.align import AlignmentState
    from napari_ccf_align.core.register import rigid
    from napari_ccf_align.core.runs import headless

    recipe = base or headless.Recipe()
    changes = {}
    if getattr(args, "method", None):
        changes["method"] = args.method
    if getattr(args, "atlas_resolution", None) is not None:
        from napari_ccf_align.core.io import atlas

        changes["atlas_resolution_um"] = atlas.check_resolution(args.atlas_resolution)
    if args.voxel_size is not None:
        if not all(math.isfinite(v) and v > 0 for v in args.voxel_size):
            given = " ".join(f"{v:g}" for v in args.voxel_size)
            raise CcfAlignError(
                f"--voxel-size {given}: every voxel size must be a positive number of µm "
                "(file array axis order, e.g. --voxel-size 50 16 16)."
            )
        frames.check_voxel_size([v / 1000.0 for v in args.voxel_size], 3)
        changes["voxel_size_um"] = tuple(args.voxel_size)
    if args.orientation is not None:
        style = args.style or (base.style if base is not None else None) or "nibabel"
        frames.check_style(args.orientation, style)  # asks, never guesses
        frames.parse_orientation(args.orientation, style)
        changes["orientation"] = args.orientation
    if args.style is not None:
        changes["style"] = args.style
    if base is None:
        if not all(math.isfinite(a) and abs(a) <= 360 for a in args.rotate):
            given = " ".join(f"{a:g}" for a in args.rotate)
            raise CcfAlignError(
                f"--rotate {given}: give three angles in degrees from -360 to 360 (about R, A, "
                "S), e.g. --rotate 0 0 90."
            )
        state = AlignmentState(
            frames.RigidParams(rotation_deg=tuple(args.rotate), flip=_flips(args.flip)),
            _crop(args.crop),
            args.crop_as_mask,
        )
        linear = changes.get("method", recipe.method).partition("+")[0]
        settings, syn_settings = settings_from_flags(
            args, linear if linear in rigid.TRANSFORMS else "rigid"
        )
        changes.update(
            state=state,
            centre=not args.no_centre,
            rigid_settings=settings,
            syn_settings=syn_settings,
        )
    return replace(recipe, **changes)


def settings_from_flags(args: argparse.Namespace, transform: str):
    """The SimpleITK and SyN settings of a run: their defaults, with every setting flag given
    (:mod:`~napari_ccf_align.core.register.setting_fields`) put in.

    ``--seed`` without ``--threads`` also sums the metric on one thread (a bit-identical
    replay, as its help says), and ``--metric ants_nc`` without ``--sampling`` reads every
    voxel, which that metric needs.
    """
    from napari_ccf_align.core.register import methods, rigid, syn
    from napari_ccf_align.core.register.setting_fields import SETTINGS

    given = {"rigid": {}, "syn": {}}
    for s in SETTINGS:
        value = getattr(args, s.flag[2:].replace("-", "_"), None)
        if value is None:
            continue
        if s.kind == "levels":
            value = rigid.parse_levels(value)
        elif s.kind == "level_iters":
            value = methods.parse_level_iters(value, s.flag)
        elif s.kind == "percentiles":
            value = tuple(value)
        for stage in s.stages:
            given[stage][s.name] = value
    r = given["rigid"]
    if "seed" in r and "threads" not in r:
        r["threads"] = 1
    if r.get("metric") == "ants_nc" and "sampling" not in r:
        r["sampling"] = "none"
    given["syn"].setdefault("working_resolution_um", methods.DEFAULT_WORKING_RESOLUTION_UM)
    return rigid.RigidSettings(transform=transform, **r), syn.SynSettings(**given["syn"])


def _flips(text: str) -> tuple[bool, bool, bool]:
    text = (text or "").upper()
    if set(text) - set("RAS"):
        raise CcfAlignError(f"--flip {text!r} names no axis: give any of R, A and S (e.g. 'R').")
    return tuple(a in text for a in "RAS")


def _crop(ranges):
    if not ranges:
        return None
    out = []
    for text in ranges:
        text = text.strip()
        start, _, stop = text.partition(":")
        try:
            out.append((int(start), int(stop)))
        except ValueError:
            raise CcfAlignError(
                f"--crop range {text!r} is not START:STOP: give three voxel ranges in file axis "
                "order, e.g. --crop 0:120 10:90 0:160."
            ) from None
        if out[-1][0] < 0 or out[-1][1] <= out[-1][0]:
            raise CcfAlignError(
                f"--crop range {text!r} is empty or starts below voxel 0: give START:STOP "
                "with 0 <= START < STOP per file axis, e.g. --crop 0:120 10:90 0:160."
            )
    return tuple(out)


def register(args: argparse.Namespace) -> int:
    """Register one sample file and save its session."""
    from napari_ccf_align.core.runs import session

    out = session.check_session_target(args.out)
    recipe = _recipe(args)
    fixed = None
    from napari_ccf_align.core.io import brainglobe
    from napari_ccf_align.core.runs import headless

    named = brainglobe.is_brainglobe_name(args.atlas)
    if named and (args.atlas_file or args.atlas_resolution is not None):
        which = "--atlas-file" if args.atlas_file else "--atlas-resolution"
        raise CcfAlignError(
            f"--atlas {args.atlas} and {which} both name the atlas: give one (a BrainGlobe "
            "atlas's name says its resolution, e.g. allen_mouse_25um)."
        )
    if args.atlas_file:
        fixed = headless.load_fixed_file(
            args.atlas_file,
            args.atlas_orientation,
            tuple(args.atlas_voxel_size) if args.atlas_voxel_size else None,
            args.style or "nibabel",
            args.atlas_labels,
        )
    elif args.atlas_labels or args.atlas_orientation or args.atlas_voxel_size:
        raise CcfAlignError(
            "--atlas-labels, --atlas-orientation and --atlas-voxel-size describe an --atlas-file: "
            "give the template file too."
        )
    elif named:
        fixed = headless.load_fixed_brainglobe(args.atlas, args.brainglobe_dir)
    if fixed is not None and args.syn_resolution is None:
        recipe = _working_no_finer_than(recipe, fixed.template)
    return _register_and_save(args, recipe, out, fixed)


def _working_no_finer_than(recipe, template):
    """The default SyN working resolution, but never finer than the template's own."""
    from dataclasses import replace

    own_um = float(template.spacing.max()) * 1000.0
    working = max(recipe.syn_settings.working_resolution_um or 0.0, own_um)
    return replace(recipe, syn_settings=replace(recipe.syn_settings, working_resolution_um=working))


def replay(args: argparse.Namespace) -> int:
    """A saved session's settings on another brain."""
    from napari_ccf_align.core.runs import headless, session

    out = session.check_session_target(args.out)
    saved, folder = session.load(args.session)
    recipe = _recipe(args, headless.recipe_of(saved))
    if args.voxel_size is None:
        headless.check_replay_geometry(recipe, args.moving)
    fixed = None
    if saved.atlas.kind != "allen":  # its own template or a BrainGlobe atlas
        fixed = headless.fixed_of_session(
            saved, folder, args.cache, args.base_url, args.brainglobe_dir
        )
    return _register_and_save(args, recipe, out, fixed)


def _register_and_save(args: argparse.Namespace, recipe, out: Path, fixed=None) -> int:
    """One run with progress bars and Ctrl-C as cancel; its summary line on stdout."""
    from napari_ccf_align.core.runs import headless

    progress = TerminalProgress(args.quiet)
    with ctrl_c_cancels() as token:
        try:
            s = headless.register_file(
                args.moving,
                recipe,
                out,
                fixed=fixed,
                cache=args.cache,
                base_url=args.base_url,
                on_progress=progress,
                cancel=token,
                write_report=not args.no_report,
            )
        finally:
            progress.close()
    print(headless.summary(s, out))
    return 0


def apply(args: argparse.Namespace) -> int:
    """A session's transforms applied to an image, a label image or a CSV of points."""
    from napari_ccf_align.core import io
    from napari_ccf_align.core.results import apply as applying
    from napari_ccf_align.core.runs import applying as routing
    from napari_ccf_align.core.runs import session

    target = routing.check_target(args.out, args.image, args.session, args.force)
    io.check_output_folder(target.parent if str(target.parent) else Path("."))
    saved, folder = session.load(args.session)
    if routing.is_points_file(args.image):
        mapped = routing.apply_to_points(
            saved,
            args.image,
            args.to,
            args.points_frame,
            args.cache,
            args.base_url,
            regions=not args.no_regions,
        )
        if mapped.note:
            print(mapped.note, file=sys.stderr)
        target.parent.mkdir(parents=True, exist_ok=True)
        applying.write_points_csv(target, mapped.table, mapped.columns)
        print(f"{len(mapped.table.rows)} points -> {args.to} space: wrote {target}")
        return 0
    geometry = routing.Geometry(
        tuple(args.voxel_size) if args.voxel_size else None, args.orientation, args.style
    )
    where = routing.Target(args.resolution, args.on)
    target.parent.mkdir(parents=True, exist_ok=True)
    out = routing.apply_to_image(
        saved, folder, args.image, args.to, args.labels, geometry, args.cache, args.base_url,
        where, target,
    )  # fmt: skip
    if isinstance(out, Path):  # an OME-Zarr, written slab by slab
        print(f"{Path(args.image).name} -> {args.to} space: wrote {out} plane by plane "
              "(never whole in memory)")  # fmt: skip
        return 0
    io.write_volume(out, target, nibabel_order=args.to == "atlas")
    kind = "labels (nearest neighbour)" if out.metadata.get("labels") else "image (linear)"
    print(f"{Path(args.image).name} -> {args.to} space, {kind}, grid {out.shape}: wrote {target}")
    return 0


def export_brainreg(args: argparse.Namespace) -> int:
    """A session as brainreg's output folder."""
    from napari_ccf_align.core.runs import exporting, session

    saved, folder = session.load(args.session)
    out = exporting.export_brainreg(
        saved, folder, args.out, args.cache, args.base_url, args.brainglobe_dir
    )
    print(f"brainreg folder for {saved.atlas.name}: wrote {out}")
    return 0


def batch(args: argparse.Namespace) -> int:
    """A session's settings over many brains on dask.distributed, with a table at the end."""
    from napari_ccf_align.core import io
    from napari_ccf_align.core.runs import batch as batches
    from napari_ccf_align.core.runs import headless, session

    out = io.check_output_folder(args.out)
    missing = [p for p in args.moving if not Path(p).is_file()]
    if missing:
        raise CcfAlignError(
            f"No file at {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}: check the "
            "paths (nothing was started)."
        )
    saved, folder = session.load(args.session)
    recipe = _recipe(args, headless.recipe_of(saved))
    fixed = headless.fixed_of_session(saved, folder, args.cache, args.base_url, args.brainglobe_dir)
    where = args.scheduler or f"a local cluster of {args.workers} workers"
    print(f"Registering {len(args.moving)} brains ({recipe.method}) on {where}.")

    def said(row) -> None:
        print(f"  {row.name}: {row.status} in {row.seconds:.1f} s", flush=True)

    rows = batches.run_batch(
        recipe,
        args.moving,
        out,
        fixed,
        scheduler=args.scheduler,
        workers=args.workers,
        write_report=not args.no_report,
        on_row=said,
    )
    print(batches.table(rows))
    return 0 if all(r.status == "ok" for r in rows) else 3
