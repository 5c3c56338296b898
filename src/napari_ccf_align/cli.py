"""Command line: the demo (napari, or headless without a screen) and atlas fetching.

The commands call the same core functions as the widgets.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import ClassVar

from .core.errors import Cancelled, CcfAlignError


def has_screen() -> bool:
    """Whether a window can be shown (an X or Wayland display on Linux)."""
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# --------------------------------------------------------------------------- progress in a terminal


class _TerminalProgress:
    """tqdm bars: bytes for downloads, iterations for each registration stage."""

    _STAGES: ClassVar[dict[str, str]] = {"register": "SimpleITK", "syn": "DIPY SyN"}

    def __init__(self, quiet: bool = False) -> None:
        self._bar = None
        self._key = None
        self.quiet = quiet

    def __call__(self, event) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if event.stage == "download":
            key, desc, kwargs = event.message, event.message, {"unit": "B", "unit_scale": True}
        elif event.stage in self._STAGES and event.total:
            key, desc, kwargs = event.stage, self._STAGES[event.stage], {"unit": "it"}
        else:
            return
        if self._bar is None or self._key != key:
            if self._key in self._STAGES and self._bar.total:  # it ended (converged early)
                self._bar.n = self._bar.total
            self.close()
            self._bar = tqdm(total=event.total or None, desc=desc, leave=True, **kwargs)
            self._key = key
        self._bar.n = min(event.done, event.total or event.done)
        if event.metric is not None:
            self._bar.set_postfix_str(f"level {event.level + 1}, metric {event.metric:.5g}")
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._key = None


@contextlib.contextmanager
def _ctrl_c_cancels():
    """The first Ctrl-C cancels the run at its next iteration (nothing is written); a second
    one interrupts at once."""
    from .core.progress import CancelToken

    token = CancelToken()
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print("\nStopping at the next iteration (Ctrl-C again to stop at once)...", file=sys.stderr)

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread: no signal handling
        yield token
        return
    try:
        yield token
    finally:
        signal.signal(signal.SIGINT, previous)


# --------------------------------------------------------------------------- commands


def fetch_atlas(args: argparse.Namespace) -> int:
    """Download the atlas into the cache (or check that it is there)."""
    from .core import atlas

    progress = _TerminalProgress()
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


def headless_demo(args: argparse.Namespace) -> int:
    """The whole pipeline without a screen: a simulated brain with known truth, rigid then
    SyN, a session folder with its QC report."""
    from . import _sample_data
    from .core import runs, session

    out = session.check_session_target(args.output)  # before the work, not after it
    print("Headless demo: simulated brain -> Allen CCF (100 µm): rigid, then DIPY SyN.")
    reference, ref_name, sim, name = _sample_data.simulated_brain_volumes()
    print(f"  reference: {ref_name}; moving: {name}")
    print(
        f"  truth: rotation {sim.truth.rotation_deg} degrees, shift {sim.truth.translation_mm} mm"
    )
    fixed = runs.Fixed(reference, _demo_annotation(reference), ref_name)
    recipe = runs.Recipe(method="rigid+syn", atlas_resolution_um=100)
    progress = _TerminalProgress(quiet=getattr(args, "quiet", False))
    with _ctrl_c_cancels() as token:
        try:
            s = runs.register_volume(
                sim.volume, session.record_input(sim.volume), fixed, recipe, out, progress, token
            )
        finally:
            progress.close()
    linear = s.result.linear
    err = runs.matrix_error_mm(linear, sim.truth.matrix(), reference)
    print(
        f"  rigid stage found rotation {tuple(round(a, 2) for a in linear.params.rotation_deg)} "
        f"degrees; mean error over the brain {err:.3f} mm (the simulated deformation is not "
        "rigid: SyN takes up the rest)"
    )
    print(f"  {runs.summary(s, out)}")
    print(f"  QC report: {out / 'qc_report.html'}")
    return 0


def _demo_annotation(reference):
    """The 100 µm annotation when the reference is the Allen template (else None)."""
    if reference.metadata.get("atlas") != "allen_mouse_ccf_v3":
        return None
    from .core import atlas

    try:
        return atlas.load_atlas(100, annotation=True).annotation
    except CcfAlignError:
        return None


# --------------------------------------------------------------------------- register, apply, ...


def _recipe(args: argparse.Namespace, base=None):
    """A run recipe from the command line's flags (over ``base``, a saved session's recipe)."""
    from dataclasses import replace

    from .core import rigid, runs, space, syn
    from .core.alignment import AlignmentState

    recipe = base or runs.Recipe()
    changes = {}
    if getattr(args, "method", None):
        changes["method"] = args.method
    if getattr(args, "atlas_resolution", None):
        changes["atlas_resolution_um"] = args.atlas_resolution
    if args.voxel_size is not None:
        if not all(math.isfinite(v) and v > 0 for v in args.voxel_size):
            given = " ".join(f"{v:g}" for v in args.voxel_size)
            raise CcfAlignError(
                f"--voxel-size {given}: every voxel size must be a positive number of µm "
                "(file array axis order, e.g. --voxel-size 50 16 16)."
            )
        space.check_voxel_size([v / 1000.0 for v in args.voxel_size], 3)
        changes["voxel_size_um"] = tuple(args.voxel_size)
    if args.orientation is not None:
        changes["orientation"] = args.orientation
    if args.style is not None:
        changes["style"] = args.style
    if base is None:
        state = AlignmentState(
            space.RigidParams(rotation_deg=tuple(args.rotate), flip=_flips(args.flip)),
            _crop(args.crop),
            args.crop_as_mask,
        )
        linear = changes.get("method", recipe.method).partition("+")[0]
        settings = rigid.RigidSettings(
            transform=linear if linear in rigid.TRANSFORMS else "rigid",
            **({"iterations": args.iterations} if args.iterations else {}),
        )
        syn_settings = syn.SynSettings(
            working_resolution_um=args.syn_resolution,
            **({"level_iters": _levels(args.syn_iterations)} if args.syn_iterations else {}),
        )
        changes.update(
            state=state,
            centre=not args.no_centre,
            rigid_settings=settings,
            syn_settings=syn_settings,
        )
    return replace(recipe, **changes)


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
        start, _, stop = text.partition(":")
        try:
            out.append((int(start), int(stop)))
        except ValueError:
            raise CcfAlignError(
                f"--crop range {text!r} is not START:STOP: give three voxel ranges in file axis "
                "order, e.g. --crop 0:120 10:90 0:160."
            ) from None
    return tuple(out)


def _levels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(";", ",").split(",") if x.strip())
    except ValueError:
        raise CcfAlignError(
            f"--syn-iterations {text!r} are not whole numbers: write e.g. '40,20,10' (coarsest "
            "level first)."
        ) from None


def register(args: argparse.Namespace) -> int:
    """Register one sample file and save its session."""
    from .core import session

    out = session.check_session_target(args.out)
    return _register_and_save(args, _recipe(args), out)


def replay(args: argparse.Namespace) -> int:
    """A saved session's settings on another brain."""
    from .core import runs, session

    out = session.check_session_target(args.out)
    saved, _ = session.load(args.session)
    return _register_and_save(args, _recipe(args, runs.recipe_of(saved)), out)


def _register_and_save(args: argparse.Namespace, recipe, out: Path) -> int:
    """One run with progress bars and Ctrl-C as cancel; its summary line on stdout."""
    from .core import runs

    progress = _TerminalProgress(args.quiet)
    with _ctrl_c_cancels() as token:
        try:
            s = runs.register_file(
                args.moving,
                recipe,
                out,
                cache=args.cache,
                base_url=args.base_url,
                on_progress=progress,
                cancel=token,
                write_report=not args.no_report,
            )
        finally:
            progress.close()
    print(runs.summary(s, out))
    return 0


def apply(args: argparse.Namespace) -> int:
    """A session's transforms applied to an image, a label image or a CSV of points."""
    from .core import apply as applying
    from .core import io, session

    target = Path(args.out)
    if target.is_dir():
        raise CcfAlignError(f"--out {target} is a folder: give a file name to write.")
    io.check_output_folder(target.parent if str(target.parent) else Path("."))
    saved, folder = session.load(args.session)
    if str(args.image).lower().endswith(".csv"):
        return _apply_points(args, saved, target)
    result = saved.result
    if args.to == "atlas":
        image = _read_to_apply(args, saved)
        out = applying.image_to_atlas(result, image, saved.atlas.grid(), labels=args.labels)
    else:
        image, labels = _atlas_image(args, saved, folder)
        out = applying.labels_to_sample(result, image, saved.moving.grid(), labels=labels)
    target.parent.mkdir(parents=True, exist_ok=True)
    io.write_volume(out, target, nibabel_order=args.to == "atlas")
    kind = "labels (nearest neighbour)" if out.metadata.get("labels") else "image (linear)"
    print(f"{Path(args.image).name} -> {args.to} space, {kind}, grid {out.shape}: wrote {target}")
    return 0


def _read_to_apply(args, saved):
    """An image on the sample's grid, read with the session's geometry unless flags say other."""
    from .core import session

    rec = saved.moving
    voxel = tuple(args.voxel_size) if args.voxel_size else rec.voxel_size_um
    code = args.orientation or rec.orientation
    style = args.style or rec.style
    return session.read_input(args.image, voxel, code, style)


def _atlas_image(args, saved, folder):
    """(atlas-space image, labels?) for ``apply --to sample``: ``annotation`` means the atlas's."""
    import re

    from .core import atlas, io, session

    if str(args.image).lower() == "annotation":
        _, annotation, _ = session.read_fixed(saved, folder, args.cache, args.base_url)
        if annotation is None:
            raise CcfAlignError(
                "This session's atlas has no annotation: give an atlas-space label image file."
            )
        return annotation, True
    name = Path(args.image).name
    if re.fullmatch(r"(annotation|average_template)_\d+\.nrrd", name):
        return atlas.read_allen_nrrd(args.image), name.startswith("annotation") or args.labels
    return io.read_volume(args.image), args.labels


def _apply_points(args, saved, target: Path) -> int:
    from .core import apply as applying
    from .core import atlas

    result = saved.result
    if args.to == "atlas":
        table = applying.read_points_csv(args.image, saved.moving.grid(), args.points_frame)
        points = applying.points_to_atlas(result, table.world_ras)
        annotation = structures = None
        resolution = None
        if saved.atlas.kind == "allen":
            resolution = saved.atlas.resolution_um
            try:
                a = atlas.load_atlas(
                    int(resolution), annotation=True, cache=args.cache, base_url=args.base_url
                )
                annotation, structures = a.annotation, a.structures
            except CcfAlignError as exc:
                print(f"Region names left out: the annotation could not be loaded ({exc})")
        columns = applying.atlas_columns(points, resolution, annotation, structures)
    else:
        table = applying.read_points_csv(args.image, saved.atlas.grid(), args.points_frame)
        points = applying.points_to_sample(result, table.world_ras)
        columns = applying.sample_columns(points, saved.moving.grid())
    target.parent.mkdir(parents=True, exist_ok=True)
    applying.write_points_csv(target, table, columns)
    print(f"{len(table.rows)} points -> {args.to} space: wrote {target}")
    return 0


def batch(args: argparse.Namespace) -> int:
    """A session's settings over many brains on dask.distributed, with a table at the end."""
    from .core import batch as batches
    from .core import io, runs, session

    out = io.check_output_folder(args.out)
    missing = [p for p in args.moving if not Path(p).is_file()]
    if missing:
        raise CcfAlignError(
            f"No file at {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}: check the "
            "paths (nothing was started)."
        )
    saved, folder = session.load(args.session)
    recipe = _recipe(args, runs.recipe_of(saved))
    if saved.atlas.kind == "allen":
        fixed = runs.load_fixed(recipe.atlas_resolution_um, args.cache, args.base_url)
    else:
        template, annotation, _ = session.read_fixed(saved, folder)
        fixed = runs.Fixed(template, annotation, saved.atlas.source)
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


def gui_demo(args: argparse.Namespace) -> int:
    """napari with the plugin's widgets docked and the simulated brain loaded."""
    if args.screenshot:
        _screenshot_folder(Path(args.screenshot))
    import napari

    from .widgets._view import anatomical_view

    viewer = napari.Viewer(title="napari-ccf-align demo")
    viewer.window.resize(1500, 950)
    viewer.window.add_plugin_dock_widget("napari-ccf-align", "Load volume and atlas")
    _, align = viewer.window.add_plugin_dock_widget(
        "napari-ccf-align", "Initial alignment and crop", tabify=True
    )
    viewer.window.add_plugin_dock_widget("napari-ccf-align", "Register", tabify=True)
    viewer.window.add_plugin_dock_widget("napari-ccf-align", "Inspect the result", tabify=True)
    viewer.window.add_plugin_dock_widget("napari-ccf-align", "Session", tabify=True)
    viewer.open_sample("napari-ccf-align", "simulated_brain")
    anatomical_view(viewer)
    viewer.reset_view()
    from qtpy.QtCore import QTimer

    # the next step, the Align tab, in front: after the docks have joined their tab group
    QTimer.singleShot(0, lambda: align.parent().raise_())
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        deadline = time.time() + 30
        align.request_preview()
        while align.worker is not None and time.time() < deadline:
            QApplication.processEvents()
            time.sleep(0.02)
        for _ in range(10):
            QApplication.processEvents()
        viewer.screenshot(args.screenshot, canvas_only=False)
        print(f"Screenshot written to {args.screenshot}")
        viewer.close()
        return 0
    napari.run()
    return 0


def _screenshot_folder(path: Path) -> None:
    """Make the folder a screenshot goes into, or say why it cannot be made."""
    from .core import io

    if path.is_dir():
        raise CcfAlignError(f"{path} is a folder: give a file name ending in .png.")
    io.check_output_folder(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io.write_error(path.parent, exc) from None


def demo(args: argparse.Namespace) -> int:
    """The main job: napari with the demo, or the headless demo without a screen."""
    if args.headless or not has_screen():
        if not args.headless:
            print(
                "No screen found (DISPLAY is not set), so napari cannot open: running the "
                "headless demo instead. Use 'xvfb-run -a' or a desktop session for napari."
            )
        return headless_demo(args)
    return gui_demo(args)


def _geometry_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--voxel-size",
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        help="voxel size in µm per file array axis (default: the file header's)",
    )
    p.add_argument("--orientation", help="orientation code of the file's axes, e.g. PIR")
    p.add_argument(
        "--style",
        choices=["nibabel", "brainglobe"],
        help="how the code is written: letters name the direction each axis increases towards "
        "(nibabel, default) or the origin's corner (brainglobe)",
    )


def _atlas_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", help="atlas cache folder (default: the user cache, $CCF_ALIGN_CACHE)")
    p.add_argument("--base-url", help="mirror of the Allen download server")


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-report", action="store_true", help="skip the QC report (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-ccf-align``."""
    from .core.pipeline import METHODS

    parser = argparse.ArgumentParser(
        prog="napari-ccf-align",
        description="Register a mouse-brain volume to the Allen CCF v3 (napari plugin + CLI).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="napari with the demo loaded (headless without a screen)")
    d.add_argument(
        "--headless", action="store_true", help="run the headless demo even with a screen"
    )
    d.add_argument("--screenshot", help="with a screen: save a screenshot of the demo and exit")
    d.add_argument("--output", default="ccf-align-demo", help="session folder of the headless demo")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=demo)

    methods = [name for name, _ in METHODS if name != "syn"]
    r = sub.add_parser("register", help="register a sample file and save the session")
    r.add_argument("moving", help="the sample: NIfTI, NRRD, MHA/MHD or TIFF")
    _geometry_flags(r)
    r.add_argument("--atlas-resolution", type=int, default=25, help="10, 25, 50 or 100 (µm)")
    r.add_argument(
        "--rotate",
        nargs=3,
        type=float,
        default=(0.0, 0.0, 0.0),
        metavar=("RX", "RY", "RZ"),
        help="initial rotation, degrees about the R, A and S axes",
    )
    r.add_argument("--flip", default="", help="mirror across the named axes first, e.g. R")
    r.add_argument("--crop", nargs=3, metavar="START:STOP", help="voxel range per file array axis")
    r.add_argument("--crop-as-mask", action="store_true", help="mask with the crop, keep the grid")
    r.add_argument("--no-centre", action="store_true", help="do not centre the sample on the atlas")
    r.add_argument("--method", choices=methods, default="rigid")
    r.add_argument("--iterations", type=int, help="SimpleITK iterations per level")
    r.add_argument(
        "--syn-resolution", type=float, default=100.0, help="SyN working resolution (µm)"
    )
    r.add_argument("--syn-iterations", help="SyN iterations per level, coarse first: 40,20,10")
    r.add_argument("--out", required=True, help="session folder to write")
    _atlas_flags(r)
    _run_flags(r)
    r.set_defaults(func=register)

    a = sub.add_parser("apply", help="apply a session's transforms to an image or points")
    a.add_argument("session", help="session folder")
    a.add_argument(
        "image",
        help="an image on the sample's grid (--to atlas), an atlas-space image or the word "
        "'annotation' (--to sample), or a CSV of points",
    )
    a.add_argument("--to", choices=["atlas", "sample"], default="atlas")
    a.add_argument("--labels", action="store_true", help="nearest neighbour: keep label values")
    a.add_argument(
        "--points-frame",
        choices=["index", "world"],
        default="index",
        help="CSV coordinates are voxel indices (default) or world RAS mm",
    )
    _geometry_flags(a)
    _atlas_flags(a)
    a.add_argument("--out", required=True, help="file to write (.nii.gz, .nrrd, .tif or .csv)")
    a.set_defaults(func=apply)

    p = sub.add_parser("replay", help="a session's settings on another brain")
    p.add_argument("session", help="session folder whose settings to use")
    p.add_argument("moving", help="the new sample file")
    _geometry_flags(p)
    p.add_argument("--out", required=True, help="new session folder")
    _atlas_flags(p)
    _run_flags(p)
    p.set_defaults(func=replay)

    b = sub.add_parser("batch", help="a session's settings over many brains (dask.distributed)")
    b.add_argument("session", help="session folder whose settings to use")
    b.add_argument("moving", nargs="+", help="sample files")
    _geometry_flags(b)
    b.add_argument("--out", required=True, help="folder for one session per brain")
    b.add_argument("--scheduler", help="address of a running dask scheduler (default: local)")
    b.add_argument("--workers", type=int, default=2, help="local cluster worker processes")
    _atlas_flags(b)
    _run_flags(b)
    b.set_defaults(func=batch)

    f = sub.add_parser("fetch-atlas", help="download the Allen CCF into the cache")
    f.add_argument("--resolution", type=int, default=25, help="10, 25, 50 or 100 (µm)")
    f.add_argument("--cache", help="cache folder (default: the user cache, or $CCF_ALIGN_CACHE)")
    f.add_argument("--base-url", help="mirror of the Allen download server")
    f.add_argument("--no-annotation", action="store_true", help="template only")
    f.set_defaults(func=fetch_atlas)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; bad input ends with one sentence on stderr and exit status 2."""
    args = build_parser().parse_args(argv)
    from .core.runs import quiet_dipy_log

    quiet_dipy_log()
    try:
        return args.func(args)
    except Cancelled:
        print("napari-ccf-align: interrupted; nothing half-written was kept.", file=sys.stderr)
        return 130
    except CcfAlignError as exc:
        print(f"napari-ccf-align: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napari-ccf-align: interrupted; nothing half-written was kept.", file=sys.stderr)
        return 130
    except Exception as exc:  # no traceback reaches the user; the sentence says what to do
        print(
            f"napari-ccf-align: stopped by an unexpected error ({type(exc).__name__}: {exc}); "
            "please report it with the command you ran.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
