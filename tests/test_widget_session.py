"""Session dock, docked from the Plugins menu: save, load into a fresh viewer, apply.

The sample is an anisotropic uint16 file in PIR order opened with the plugin's
reader; the atlas is the real 100 µm Allen CCF (served on 127.0.0.1 into a fresh
cache) when ../shared/data has it, else the phantom (then embedded in the session).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from napari_ccf_align.core import align, io
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.volume import Volume
from napari_ccf_align.plugin.layer_data import atlas_layer_data, image_layer_data, labels_layer_data
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets._layers import add_layer_data
from napari_ccf_align.plugin.widgets.register import MOVING_KEY, RESULT_KEY

from .conftest import SHARED_DATA, lightsheet_like
from .http_mirror import build_mirror, serve

pytestmark = pytest.mark.gui

REAL = (SHARED_DATA / "annotation_100.nrrd").is_file()


@pytest.fixture
def atlas_source(tmp_path, monkeypatch):
    """The real atlas from a local mirror into a fresh cache, or the phantom."""
    if not REAL:
        yield None
        return
    root = build_mirror(SHARED_DATA, tmp_path / "mirror")
    with serve(root) as (url, _):
        monkeypatch.setenv(atlas.ENV_BASE_URL, url)
        monkeypatch.setenv("CCF_ALIGN_CACHE", str(tmp_path / "cache"))
        yield atlas.load_atlas(100)


def _fixed_layers(viewer, loaded, template_100):
    if loaded is not None:
        for data in atlas_layer_data(loaded):
            add_layer_data(viewer, data)
        return loaded.template
    meta = {"atlas": "brain phantom", "resolution_um": 100}
    phantom = Volume(template_100.data, template_100.affine, "brain phantom", "RAS", meta)
    labels = Volume(
        np.digitize(template_100.data, [0.2, 0.5, 0.8]).astype(np.uint32),
        template_100.affine,
        "phantom classes",
        "RAS",
        meta,
    )
    add_layer_data(viewer, image_layer_data(phantom, colormap="gray"))
    add_layer_data(viewer, labels_layer_data(labels))
    return phantom


def _dock(viewer, *titles):
    return [viewer.window.add_plugin_dock_widget("napari-ccf-align", t)[1] for t in titles]


@pytest.fixture
def registered(make_napari_viewer, qtbot, template_100, atlas_source, tmp_path):
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1400, 900)
    fixed = _fixed_layers(viewer, atlas_source, template_100)
    sample, _ = lightsheet_like(template_100)
    path = io.write_volume(sample, tmp_path / "sample.nii.gz")
    viewer.open(str(path), plugin="napari-ccf-align")
    register, sessions = _dock(viewer, "Register", "Session")
    model = model_for(viewer)
    model.moving_layer = "sample"
    moving = io.read_volume(path)
    centred = align.centre_on_atlas(align.AlignmentState(), moving, fixed)
    shown = viewer.layers["sample"].metadata["ccf_align_volume"]  # axes R, A, S
    crop = tuple((1, n - 2) for n in shown.shape[:2]) + ((3, shown.shape[2]),)
    model.set(replace(centred, crop=crop))
    register.method.value = "rigid+syn"
    register.iterations.value = 40
    register.syn_iters.value = "10, 5"
    register.syn_resolution.value = 200
    register.syn_process.value = False
    register.run()
    qtbot.waitUntil(lambda: register.run_button.enabled, timeout=120_000)
    assert sessions.result.value == "sample (rigid+syn)"
    return viewer, register, sessions, path


def _idle(qtbot, w):
    qtbot.waitUntil(lambda: w.save_button.enabled, timeout=120_000)


def test_save_then_load_into_a_fresh_viewer_restores_layers_and_widgets(
    registered, make_napari_viewer, qtbot, tmp_path, screenshot_dir
):
    viewer, register, sessions, path = registered
    original = viewer.layers["sample (rigid+syn)"].metadata[RESULT_KEY]
    folder = tmp_path / "saved"
    sessions.save_session(folder)
    _idle(qtbot, sessions)
    assert "Session saved" in sessions.status.value, sessions.status.value
    data = json.loads((folder / "session.json").read_text())
    assert data["moving"]["path"] == str(path.resolve())
    assert data["method"] == "rigid+syn" and data["syn_settings"]["level_iters"] == [10, 5]
    assert (folder / "annotation_in_sample.nii.gz").is_file()
    assert (folder / "fixed.nii.gz").is_file() != REAL  # the phantom is embedded, Allen is not
    # region volumes from a GUI save too, where the annotation names its regions (Allen)
    assert (folder / "volumes.csv").is_file() == REAL and sessions.volumes.visible == REAL
    if REAL:
        table = sessions.volumes.value
        assert "Isocortex" in table["index"] and list(table["columns"]) == [
            "left (mm³)",
            "right (mm³)",
        ]
        left, right = (float(v) for v in table["data"][list(table["index"]).index("Isocortex")])
        assert left > 0 and right > 0 and 0.7 < left / right < 1.4  # two similar hemispheres
    # the session is on the file's grid (P, I, R here), crop included
    in_file = io.read_volume(path)
    shown = viewer.layers["sample"].metadata["ccf_align_volume"]
    crop_shown = model_for(viewer).state.crop
    assert data["moving"]["shape"] == list(in_file.shape) != list(shown.shape)
    file_crop = align.crop_between(crop_shown, shown, in_file)
    assert [tuple(r) for r in data["alignment"]["crop"]] == list(file_crop)
    np.testing.assert_array_equal(
        np.sort(in_file.cropped(file_crop).data.ravel()),
        np.sort(shown.cropped(crop_shown).data.ravel()),
    )  # the same voxels

    fresh = make_napari_viewer(show=True)
    fresh.window.resize(1400, 900)
    align_dock, register2, sessions2 = _dock(
        fresh, "Initial alignment and crop", "Register", "Session"
    )
    sessions2.load_session(folder)
    _idle(qtbot, sessions2)
    assert "Session loaded" in sessions2.status.value, sessions2.status.value
    names = [layer.name for layer in fresh.layers]
    assert "sample" in names and "sample (rigid+syn)" in names
    restored = fresh.layers["sample (rigid+syn)"]
    assert restored.metadata[MOVING_KEY] == "sample"
    np.testing.assert_allclose(restored.metadata[RESULT_KEY].matrix, original.matrix, atol=1e-9)
    np.testing.assert_array_equal(restored.metadata[RESULT_KEY].forward, original.forward)
    model = model_for(fresh)
    assert model.moving_layer == "sample"
    assert model.state == model_for(viewer).state
    assert register2.method.value == "rigid+syn" and register2.iterations.value == 40
    assert register2.syn_iters.value == "10, 5" and register2.syn_resolution.value == 200
    assert register2.last_result[0] == "sample"
    assert sessions2.volumes.visible == REAL  # the saved volumes, shown again on load
    fresh.screenshot(str(screenshot_dir / "session_loaded.png"), canvas_only=False)

    # a fresh viewer with only the Session dock: the load opens Align and Register itself,
    # restores them against the original sample (never the warped result), with contrast
    # that shows the tissue, and the result on top
    bare = make_napari_viewer(show=True)
    (sessions3,) = _dock(bare, "Session")
    sessions3.load_session(folder)
    _idle(qtbot, sessions3)
    align3 = bare.window.add_plugin_dock_widget("napari-ccf-align", "Initial alignment and crop")[1]
    register3 = bare.window.add_plugin_dock_widget("napari-ccf-align", "Register")[1]
    saved_state = model_for(viewer).state
    assert model_for(bare).moving_layer == "sample" and model_for(bare).state == saved_state
    assert align3.moving.value.name == "sample"
    assert [round(r.value(), 2) for r in align3.rot] == [
        round(a, 2) for a in saved_state.rigid.rotation_deg
    ]
    assert register3.method.value == "rigid+syn" and register3.last_result[0] == "sample"
    assert register3.moving.value.name == "sample"  # not the warped result listed first
    assert bare.layers[-1].name == "sample (rigid+syn)"
    for name in ("sample", "sample (rigid+syn)"):
        layer = bare.layers[name]
        tissue = np.asarray(layer.data)[np.asarray(layer.data) > 0]
        assert layer.contrast_limits[1] <= np.percentile(tissue, 99.9)  # not 0..max
    assert not [n for n in (lyr.name for lyr in bare.layers) if "(rigid+syn) (" in n]


def test_apply_maps_the_annotation_to_the_sample_and_points_to_the_atlas(registered, qtbot):
    viewer, register, sessions, path = registered
    result = viewer.layers["sample (rigid+syn)"].metadata[RESULT_KEY]
    labels_name = next(
        layer.name for layer in viewer.layers if layer.__class__.__name__ == "Labels"
    )
    sessions.layer.value = labels_name
    assert sessions.direction.value == "sample"  # an atlas layer goes to the sample
    sessions.apply_to(labels_name)
    _idle(qtbot, sessions)
    out = viewer.layers[f"{labels_name} (in sample)"]
    assert out.data.shape == viewer.layers["sample"].data.shape
    allen_ids = atlas.structure_id_volume(viewer.layers[labels_name].metadata["ccf_align_volume"])
    assert set(np.unique(out.metadata["ccf_align_volume"].data)) <= set(np.unique(allen_ids.data))

    sample = io.read_volume(path)
    cells = sample.index_to_world(np.array([[30.0, 20.0, 45.0], [20.0, 15.0, 30.0]]))
    viewer.add_points(cells, name="cells")
    sessions.layer.value = "cells"
    assert sessions.direction.value == "atlas"
    sessions.apply_to("cells")
    mapped = viewer.layers["cells (in atlas)"]
    np.testing.assert_allclose(mapped.data, result.to_atlas(cells), atol=1e-6)
    if REAL:
        assert all(name for name in mapped.features["region"])


def test_saving_without_a_folder_or_onto_other_files_says_so(registered, tmp_path, qtbot):
    viewer, register, sessions, path = registered
    assert sessions.save_session("") is None
    assert "Give a session folder" in sessions.status.value
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert sessions.save_session(tmp_path / "mine") is None
    assert "not a session folder" in sessions.status.value
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_export_for_brainglobe_from_the_dock(registered, tmp_path, qtbot):
    """The Session dock writes the saved session as brainreg's folder (the Allen atlas is
    named allen_mouse_100um); before a save, and for an own template, it says why not."""
    from napari_ccf_align.core.results import brainreg

    viewer, register, sessions, path = registered
    assert sessions.export_brainreg(tmp_path / "nothing", tmp_path / "br") is None
    assert "save the session (or load one)" in sessions.status.value
    sessions.save_session(tmp_path / "s")
    _idle(qtbot, sessions)
    sessions.export_brainreg(tmp_path / "s", tmp_path / "br")
    _idle(qtbot, sessions)
    if REAL:
        assert "brainreg folder written" in sessions.status.value
        assert sorted(p.name for p in (tmp_path / "br").iterdir()) == sorted(brainreg.FILES)
        meta = json.loads((tmp_path / "br" / "brainreg.json").read_text())
        assert meta["atlas"] == "allen_mouse_100um" and meta["orientation"] == "asl"
    else:  # the phantom is an own template: no BrainGlobe tool could load it by name
        assert "register to the Allen CCF or a BrainGlobe atlas" in sessions.status.value
        assert not (tmp_path / "br").exists()
