"""How long napari's GUI thread stalls during the Session and Inspect docks' heavy steps, on a
25 µm-sized sample (the issue-18 probe): a QTimer fires every 10 ms on the GUI thread and the
longest gap between its ticks is the longest stall a user feels.

Steps, each timed whole (seconds until its layer is there) and by its longest stall:
loading a session (sample, warped result, atlas), applying the annotation to the sample,
switching on the Jacobian view. Baseline in the same process: napari adding one image layer
of the sample's size on an idle GUI thread (what any step that shows such a layer costs at
least: napari builds and uploads the layer on its own thread).
Needs a display: ``xvfb-run -a .venv/bin/python -m benchmarks.bench_stall [--why]``; with
``--why`` it prints the frames the GUI thread was in during each step's stalls.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
from scipy import ndimage

from benchmarks.bench_gui import Probe, Watchdog, spin
from benchmarks.common import template_100, write
from napari_ccf_align.core import io
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.register import rigid, syn
from napari_ccf_align.core.runs import headless
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.core.volume import Volume


def _sample_25um(template: Volume) -> Volume:
    """The simulated brain upsampled to 25 µm (4x per axis, ~75 M voxels), as uint16."""
    sim = phantom.simulate_brain(template)
    data = ndimage.zoom(np.asarray(sim.volume.data, np.float32), 4, order=1)
    data = (data / data.max() * 10_000).astype(np.uint16)
    affine = sim.volume.affine.copy()
    affine[:3, :3] = affine[:3, :3] / 4.0
    affine[:3, 3] = sim.volume.index_to_world(np.full(3, -0.375))
    return Volume(data, affine, "brain 25 µm", "RAS", {"orientation": "RAS"})


def _explain(step: str, dog: Watchdog) -> None:
    """With ``--why``: the frames the GUI thread was in during the step's stalls."""
    if "--why" in sys.argv:
        print(f"--- {step}: {len(dog.samples)} stall samples (20 ms each)")
        for frame, count in dog.top(40):
            print(f"{count:5d}  {frame}")


def main() -> None:
    fixed, label = template_100()
    annotation = None
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    if (shared / "annotation_100.nrrd").is_file():
        loaded = atlas.load_atlas_files(
            shared / "average_template_100.nrrd",
            shared / "annotation_100.nrrd",
            shared / "allen_structure_graph.json",
        )
        fixed, annotation, structures = loaded.template, loaded.annotation, loaded.structures
    sample = _sample_25um(fixed)
    tmp = Path(tempfile.mkdtemp())
    path = io.write_volume(sample, tmp / "brain25.nii.gz")
    recipe = headless.Recipe(
        method="rigid+syn",
        rigid_settings=rigid.RigidSettings(iterations=40),
        syn_settings=syn.SynSettings(level_iters=(10, 5), working_resolution_um=200),
        atlas_resolution_um=100,
    )
    fix = headless.Fixed(fixed, annotation, label, structures if annotation is not None else None)
    headless.register_file(path, recipe, tmp / "session", fixed=fix, write_report=False)
    rows = {"sample": f"{sample.shape} uint16, {sample.data.nbytes / 1e6:.0f} MB", "atlas": label}

    viewer = napari.Viewer()
    viewer.window.resize(1400, 900)

    def measure(step: str, action, until) -> None:
        with Probe() as probe, Watchdog(probe) as dog:
            t0 = time.perf_counter()
            action()
            spin(until)
            seconds = time.perf_counter() - t0
            spin(lambda: False, timeout=1.0)
        rows[step] = {
            "stall_s": round(probe.longest_gap_s(), 3),
            "ours_s": dog.ours_longest_s(),
            "seconds": round(seconds, 2),
        }
        print(step, rows[step], flush=True)
        _explain(step, dog)

    added: list = []
    measure(  # baseline: napari adds a layer of the sample's size
        "baseline: add one layer of the sample's size",
        lambda: added.append(viewer.add_image(sample.data, name="baseline")),
        lambda: True,
    )
    viewer.layers.remove(added[0])
    tiny = np.ascontiguousarray(sample.data[::16, ::16, ::16])
    measure(  # napari's floor: the same add for a layer 4096x smaller
        f"baseline: add one layer of {tiny.shape} voxels",
        lambda: added.append(viewer.add_image(tiny, name="tiny baseline")),
        lambda: True,
    )
    viewer.layers.remove(added[1])

    _, sessions = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Session")
    measure(
        "session load",
        lambda: sessions.load_session(tmp / "session"),
        lambda: sessions.save_button.enabled and "(rigid+syn)" in str(viewer.layers),
    )
    labels = next((lyr for lyr in viewer.layers if isinstance(lyr, napari.layers.Labels)), None)
    if labels is not None:
        sessions.direction.value = "sample"
        measure(
            "apply the annotation to the sample",
            lambda: sessions.apply_to(labels.name),
            lambda: f"{labels.name} (in sample)" in viewer.layers,
        )
    _, inspect = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Inspect the result")
    for key, box in inspect.toggles.items():
        if box.value or (key.endswith("boundaries") and labels is None):
            continue
        measure(
            f"Inspect: {key} on",
            lambda box=box: setattr(box, "value", True),
            lambda key=key: inspect.layer_name(key) in viewer.layers,
        )
    report = tmp / "report"
    measure(
        "QC report",
        lambda: inspect.export_report(str(report)),
        lambda: (report / "qc_report.html").is_file(),
    )
    measure(
        "session save",
        lambda: sessions.save_session(tmp / "saved"),
        lambda: sessions.save_button.enabled and (tmp / "saved" / "session.json").is_file(),
    )
    measure(  # napari's floor again, in the viewer as the steps left it
        f"baseline, warm viewer: add one layer of {tiny.shape} voxels",
        lambda: viewer.add_image(tiny, name="tiny baseline, warm"),
        lambda: True,
    )
    print("written to", write("stall", {"rows": rows}))
    viewer.close()


if __name__ == "__main__":
    main()
