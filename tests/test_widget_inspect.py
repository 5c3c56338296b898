"""Inspect widget: each QC layer is added and removed; figures; screenshots in 2D and 3D."""

from __future__ import annotations

import re

import numpy as np
import pytest
from napari.layers import Labels
from scipy import ndimage

from napari_ccf_align.core import align
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.register import syn
from napari_ccf_align.core.results import qc, report
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.plugin.layer_data import STRUCTURES_KEY, atlas_layer_data, image_layer_data
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets._layers import RESULT_KEY, add_layer_data, atlas_layer
from napari_ccf_align.plugin.widgets.inspect import OUTLINE_DEPTH

from .conftest import SHARED_DATA

pytestmark = pytest.mark.gui


@pytest.fixture
def inspected(make_napari_viewer, qtbot, template_100):
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
    if (SHARED_DATA / "annotation_100.nrrd").is_file():
        loaded = atlas.load_atlas_files(
            SHARED_DATA / "average_template_100.nrrd",
            SHARED_DATA / "annotation_100.nrrd",
            SHARED_DATA / "allen_structure_graph.json",
        )
    else:  # the phantom, with its tissue classes as the "annotation"
        labels = template_100.with_data(np.digitize(template_100.data, [0.2, 0.5, 0.8]))
        loaded = atlas.Atlas(100, _as_atlas(template_100), _as_atlas(labels), None)
    for data in atlas_layer_data(loaded):
        add_layer_data(viewer, data)
    sim = phantom.simulate_brain(loaded.template)
    add_layer_data(viewer, image_layer_data(sim.volume, colormap="magenta"))
    model = model_for(viewer)
    model.moving_layer = sim.volume.name
    model.set(align.centre_on_atlas(align.AlignmentState(), sim.volume, loaded.template))
    _, register = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Register")
    _, inspect = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Inspect the result")
    register.method.value = "rigid+syn"
    register.iterations.value = 40
    register.syn_iters.value = "10, 5"
    register.syn_resolution.value = 200
    register.run()
    qtbot.waitUntil(lambda: register.run_button.enabled, timeout=120_000)
    return viewer, inspect, sim


def _as_atlas(v):
    from napari_ccf_align.core.volume import Volume

    meta = {**v.metadata, "atlas": "allen_mouse_ccf_v3", "resolution_um": 100}
    return Volume(v.data, v.affine, v.name, "RAS", meta)


def _wait(qtbot, inspect, key):
    qtbot.waitUntil(lambda: inspect.layer_name(key) in inspect.viewer.layers, timeout=60_000)


def test_each_view_is_added_and_removed(inspected, qtbot, screenshot_dir):
    viewer, inspect, sim = inspected
    assert inspect.result.value == f"{sim.volume.name} (rigid+syn)"  # the new result is picked
    for key, box in inspect.toggles.items():
        box.value = True
        _wait(qtbot, inspect, key)
        layer = viewer.layers[inspect.layer_name(key)]
        result_layer = viewer.layers[inspect.result.value]
        if key in ("jacobian", "folding", "magnitude"):  # on SyN's (coarser) working grid
            grid = result_layer.metadata[RESULT_KEY].field_grid
            assert layer.data.shape == grid.shape != result_layer.data.shape
            np.testing.assert_allclose(layer.affine.affine_matrix, grid.affine, atol=1e-9)
        elif key != "sample_boundaries":
            assert layer.data.shape == result_layer.data.shape
        assert not re.search(r"\bnan\b", inspect.status.value.lower()), inspect.status.value
        if key == "jacobian":
            assert tuple(layer.contrast_limits) == (-1.0, 1.0) and layer.colorbar.visible
            (ax,) = inspect.histogram.figure.axes  # the histogram, as a titled colour bar
            assert [t.get_text() for t in ax.get_xticklabels()] == ["0.5", "0.71", "1", "1.41", "2"]
            assert "Jacobian determinant" in ax.get_xlabel() and ax.get_ylabel() == "voxels"
            assert ax.get_title() and len({p.get_facecolor() for p in ax.patches}) > 10
            inspect.histogram.figure.savefig(screenshot_dir / "inspect_jacobian_histogram.png")
            # over the whole brain, white matter and ventricles included: no holes
            _, fixed, _, _ = inspect.inputs()
            brain = qc.brain_mask(fixed, inspect._atlas_labels())
            brain = qc.mask_on(brain, fixed, grid)  # on the map's grid
            assert brain.mean() > 0.2 and np.isfinite(np.asarray(layer.data)[brain]).all()
        if key == "grid":  # lines in the plane shown, never a filled plane
            assert isinstance(layer, Labels) and layer.contour == 1
        if key == "overlay":  # two colours, contrast from the tissue (not 0..max)
            assert atlas_layer(viewer).colormap.name == "green" and layer.colormap.name == "magenta"
            data = np.asarray(layer.data)
            assert layer.contrast_limits[1] <= np.percentile(data[data > 0], 99.6)
        if key == "magnitude":
            largest = float(inspect.status.value.split("displacement ")[1].split(" mm")[0])
            assert 0.01 < largest < 5.0  # the simulated deformation's size, not NaN
        if key in ("boundaries", "sample_boundaries"):
            # hover names the region wherever the annotation has names (the Allen ontology;
            # the phantom's tissue classes offline have none)
            named = "name" in atlas_layer(viewer, Labels).features.columns
            assert named == (SHARED_DATA / "allen_structure_graph.json").is_file()
            assert ("name" in layer.features.columns) == named
            if named:  # the names are the atlas's regions, grouped as on the atlas itself
                structures = atlas_layer(viewer, Labels).metadata[STRUCTURES_KEY]
                on_atlas = atlas.structure_id_volume(inspect._atlas_labels()).data
                grouped = set(np.unique(structures.at_depth(on_atlas, OUTLINE_DEPTH)).tolist())
                assert set(layer.features["id"].tolist()) <= grouped
            # outlines in the plane shown, and a name anywhere inside a region (not only on
            # its outline): the layer holds the regions whole
            assert layer.contour == 1
            data = np.asarray(layer.data)
            inner = np.argwhere(
                ndimage.binary_erosion(
                    data == np.bincount(data.ravel())[1:].argmax() + 1, iterations=2
                )
            )
            if len(inner):
                world = layer.data_to_world(inner[len(inner) // 2])
                assert layer.get_value(world, world=True) != 0
        qtbot.wait(300)  # let napari draw the last change
        viewer.screenshot(str(screenshot_dir / f"inspect_{key}_2d.png"), canvas_only=True)
        box.value = False
        assert inspect.layer_name(key) not in viewer.layers
    inspect.toggles["jacobian"].value = True
    _wait(qtbot, inspect, "jacobian")
    viewer.dims.ndisplay = 3
    viewer.screenshot(str(screenshot_dir / "inspect_jacobian_3d.png"), canvas_only=True)
    viewer.dims.ndisplay = 2
    inspect.update_figures()
    qtbot.waitUntil(lambda: len(inspect.table.column_headers) == 3, timeout=60_000)
    table = inspect.table.to_dict("dict")
    ncc = {column: float(values[report.NCC]) for column, values in table.items()}
    assert ncc["after rigid+syn"] > ncc["hand alignment"]
    assert ncc["after the linear stage"] > ncc["hand alignment"]  # each stage has its column
    viewer.screenshot(str(screenshot_dir / "inspect_widget.png"), canvas_only=False)


def test_a_rigid_result_says_its_grid_and_jacobian_are_uniform(inspected, qtbot):
    viewer, inspect, sim = inspected
    from napari_ccf_align.core.register import pipeline

    fixed = viewer.layers[inspect.result.value]
    assert syn  # (imported for the SyN result above)
    rigid_result = pipeline.run(
        viewer.layers[0].metadata["ccf_align_volume"], sim.volume, "rigid",
        model_for(viewer).state,
    )  # fmt: skip
    fixed.metadata["ccf_align_result"] = rigid_result
    inspect.toggles["jacobian"].value = True
    _wait(qtbot, inspect, "jacobian")
    assert "one Jacobian everywhere: 1.000" in inspect.status.value


def test_export_writes_the_report(inspected, qtbot, tmp_path):
    viewer, inspect, sim = inspected
    worker = inspect.export_report(str(tmp_path / "report"))
    qtbot.waitUntil(lambda: "QC report written" in inspect.status.value, timeout=60_000)
    assert worker is not None
    assert (tmp_path / "report" / "qc_report.png").stat().st_size > 50_000
    page = (tmp_path / "report" / "qc_report.html").read_text(encoding="utf-8")
    assert "hand alignment" in page and "after rigid+syn" in page
