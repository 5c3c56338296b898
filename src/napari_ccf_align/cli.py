"""Command line: the demo (napari, or headless without a screen) and atlas fetching.

The commands call the same core functions as the widgets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .core.errors import CcfAlignError


def has_screen() -> bool:
    """Whether a window can be shown (an X or Wayland display on Linux)."""
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


# --------------------------------------------------------------------------- progress in a terminal


class _TerminalProgress:
    """Prints download progress with tqdm and registration progress once per level."""

    def __init__(self) -> None:
        self._bar = None
        self._level = None

    def __call__(self, event) -> None:
        if event.stage == "download":
            from tqdm import tqdm

            if self._bar is None or self._bar.desc != event.message:
                if self._bar is not None:
                    self._bar.close()
                self._bar = tqdm(
                    total=event.total or None, unit="B", unit_scale=True, desc=event.message
                )
            self._bar.n = event.done
            self._bar.refresh()
        elif event.stage == "register" and event.level != self._level:
            self._level = event.level
            print(f"  level {event.level + 1}: metric {event.metric:.5f}", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


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
    """Simulate a brain with known truth, register it, report the error, write the results."""
    from . import _sample_data
    from .core import alignment, io, rigid

    out = io.check_output_folder(args.output)  # before the work, not after it
    print("Headless demo: simulated brain -> Allen CCF (100 µm), rigid registration.")
    reference, ref_name, sim, name = _sample_data.simulated_brain_volumes()
    print(f"  reference: {ref_name}; moving: {name}")
    print(
        f"  truth: rotation {sim.truth.rotation_deg} degrees, shift {sim.truth.translation_mm} mm"
    )
    start = alignment.centre_on_atlas(alignment.AlignmentState(), sim.volume, reference)
    progress = _TerminalProgress()
    t0 = time.perf_counter()
    result = rigid.register(reference, sim.volume, start, on_progress=progress)
    brain = reference.data > alignment.tissue_threshold(reference)
    err = rigid.displacement_error_mm(result.matrix, sim.truth.matrix(), reference, brain)
    print(
        f"  found: rotation {tuple(round(a, 2) for a in result.params.rotation_deg)} degrees "
        f"in {time.perf_counter() - t0:.1f} s; mean error over the brain {err:.3f} mm "
        "(the simulated deformation is not rigid, so some error remains)"
    )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io.write_error(out, exc) from None
    io.write_volume(rigid.warp(reference, sim.volume, result), out / "registered.nii.gz")
    io.write_trace_csv(result.trace, out / "metric.csv")
    print(f"  wrote {out / 'registered.nii.gz'} and {out / 'metric.csv'}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-ccf-align``."""
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
    d.add_argument("--output", default="ccf-align-demo", help="folder for headless results")
    d.set_defaults(func=demo)
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
    try:
        return args.func(args)
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
