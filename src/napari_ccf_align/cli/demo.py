"""The demo: napari with every dock and the simulated brain, or the headless pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_ccf_align.cli.terminal import TerminalProgress, ctrl_c_cancels, has_screen
from napari_ccf_align.core.errors import CcfAlignError


def headless_demo(args: argparse.Namespace) -> int:
    """The whole pipeline without a screen: a simulated brain with known truth, rigid then
    SyN, a session folder with its QC report."""
    from napari_ccf_align.core.runs import headless, session
    from napari_ccf_align.core.testing import phantom
    from napari_ccf_align.plugin import sample_data

    out = session.check_session_target(args.output)  # before the work, not after it
    print("Headless demo: simulated brain -> Allen CCF (100 µm): rigid, then DIPY SyN.")
    reference, ref_name, sim, name = sample_data.simulated_brain_volumes()
    print(f"  reference: {ref_name}; moving: {name}")
    print(
        f"  truth: rotation {sim.truth.rotation_deg} degrees, shift {sim.truth.translation_mm} mm"
    )
    fixed = headless.Fixed(reference, _demo_annotation(reference), ref_name)
    recipe = headless.Recipe(method="rigid+syn", atlas_resolution_um=100)
    progress = TerminalProgress(quiet=getattr(args, "quiet", False))
    with ctrl_c_cancels() as token:
        try:
            s = headless.register_volume(
                sim.volume, session.record_input(sim.volume), fixed, recipe, out, progress, token
            )
        finally:
            progress.close()
    linear = s.result.linear
    err = phantom.error_mm(linear, sim.truth.matrix(), reference, step=7)
    print(
        f"  rigid stage found rotation {tuple(round(a, 2) for a in linear.params.rotation_deg)} "
        f"degrees; mean error over the brain {err:.3f} mm (the simulated deformation is not "
        "rigid: SyN takes up the rest)"
    )
    print(f"  {headless.summary(s, out)}")
    print(f"  QC report: {out / 'qc_report.html'}")
    return 0


def _demo_annotation(reference):
    """The 100 µm annotation when the reference is the Allen template (else None)."""
    if reference.metadata.get("atlas") != "allen_mouse_ccf_v3":
        return None
    from napari_ccf_align.core.io import atlas

    try:
        return atlas.load_atlas(100, annotation=True).annotation
    except CcfAlignError:
        return None


def gui_demo(args: argparse.Namespace) -> int:
    """napari with the plugin's widgets docked and the simulated brain loaded."""
    if args.screenshot:
        _screenshot_folder(Path(args.screenshot))
    import napari

    from napari_ccf_align.plugin.demo import open_demo, screenshot_when_ready

    viewer = napari.Viewer(title="napari-ccf-align demo")
    viewer.window.resize(1500, 950)
    align = open_demo(viewer)
    if args.screenshot:
        screenshot_when_ready(viewer, align, args.screenshot)
        print(f"Screenshot written to {args.screenshot}")
        viewer.close()
        return 0
    napari.run()
    return 0


def _screenshot_folder(path: Path) -> None:
    """Make the folder a screenshot goes into, or say why it cannot be made."""
    from napari_ccf_align.core import io

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
