"""How long napari's GUI thread stalls during the Session and Inspect docks' heavy steps, on a
25 µm-sized sample (the issue-18 probe): a QTimer fires every 10 ms on the GUI thread and the
longest gap between its ticks is the longest stall a user feels.

Steps, each timed whole (seconds until its layer is there) and by its longest stall:
loading a session (sample, warped result, atlas), applying the annotation to the sample,
switching on the Jacobian view. Baseline in the same process: napari adding one image layer
of the sample's size on an idle GUI thread (what any step that shows such a layer costs at
least: napari builds and uploads the layer on its own thread).
Needs a display: ``xvfb-run -a .venv/bin/python -m benchmarks.bench_stall``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import napari
import numpy as np
from scipy import ndimage

from benchmarks.bench_gui import Probe, spin
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
    with Probe() as probe:  # baseline: napari adds a layer of the sample's size
        t0 = time.perf_counter()
        layer = viewer.add_image(sample.data, name="baseline")
        spin(lambda: False, timeout=1.0)
    rows["baseline: add one layer of the sample's size"] = {
        "stall_s": round(probe.longest_gap_s(), 3),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    viewer.layers.remove(layer)

    _, sessions = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Session")
    with Probe() as probe:
        t0 = time.perf_counter()
        sessions.load_session(tmp / "session")
        spin(lambda: sessions.save_button.enabled and "(rigid+syn)" in str(viewer.layers))
        spin(lambda: False, timeout=1.0)
    rows["session load"] = {
        "stall_s": round(probe.longest_gap_s(), 3),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    labels = next((lyr for lyr in viewer.layers if isinstance(lyr, napari.layers.Labels)), None)
    if labels is not None:
        sessions.direction.value = "sample"
        with Probe() as probe:
            t0 = time.perf_counter()
            sessions.apply_to(labels.name)
            spin(lambda: f"{labels.name} (in sample)" in viewer.layers)
            spin(lambda: False, timeout=1.0)
        rows["apply the annotation to the sample"] = {
            "stall_s": round(probe.longest_gap_s(), 3),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    _, inspect = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Inspect the result")
    with Probe() as probe:
        t0 = time.perf_counter()
        inspect.toggles["jacobian"].value = True
        spin(lambda: inspect.layer_name("jacobian") in viewer.layers)
        spin(lambda: False, timeout=1.0)
    rows["Jacobian view on"] = {
        "stall_s": round(probe.longest_gap_s(), 3),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    for k, v in rows.items():
        print(k, v, flush=True)
    print("written to", write("stall", {"rows": rows}))
    viewer.close()


if __name__ == "__main__":
    main()
