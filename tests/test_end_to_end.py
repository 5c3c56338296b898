"""The whole napari workflow as a user clicks it, under Xvfb, with screenshots at each step.

napari starts; every dock opens from the Plugins menu (``add_plugin_dock_widget``, as the
menu does, so the docks get napari's layer proxies); the Allen atlas downloads from a local
mirror into a fresh cache; an anisotropic uint16 PIR sample loads; the user centres, rotates
and crops it; runs the default method (rigid -> affine -> SyN); opens every QC view; exports
the report; saves the session, reloads it in a fresh viewer with no other dock open; applies
it to a second channel, to the annotation and to points. The recovered map is checked
against the simulated brain's truth, and each screenshot for content.
"""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels
from scipy import ndimage

from napari_ccf_align.core import io
from napari_ccf_align.core.io import atlas
from napari_ccf_align.plugin.demo import DOCKS
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets.register import RESULT_KEY

from .conftest import SHARED_DATA, lightsheet_like
from .http_mirror import build_mirror, serve

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _shot(viewer, folder, name: str, canvas_only: bool = False) -> np.ndarray:
    """A screenshot saved as ``name``.png, refused when it is blank."""
    image = viewer.screenshot(str(folder / f"{name}.png"), canvas_only=canvas_only)
    rgb = np.asarray(image)[..., :3].astype(float)
    assert rgb.std() > 8.0, f"{name}: the screenshot is blank"
    return rgb


def _wait(qtbot, condition, timeout=180_000):
    qtbot.waitUntil(condition, timeout=timeout)


@pytest.mark.skipif(
    not (SHARED_DATA / "annotation_100.nrrd").is_file(),
    reason="needs ../shared/data (the real Allen 100 µm files) for the local atlas mirror",
)
def test_a_user_registers_inspects_saves_reloads_and_applies(
    make_napari_viewer, qtbot, tmp_path, monkeypatch, template_100, screenshot_dir
):
    monkeypatch.setenv("CCF_ALIGN_CACHE", str(tmp_path / "cache"))
    errors: list[str] = []  # what the docks say went wrong: nothing, in a user's plain run
    for dock in ("load", "align", "register", "inspect", "session"):
        module = __import__(f"napari_ccf_align.plugin.widgets.{dock}", fromlist=["x"])
        monkeypatch.setattr(module, "show_error", errors.append)
    viewer = make_napari_viewer(show=True)
    viewer.window.resize(1280, 800)
    docks = [viewer.window.add_plugin_dock_widget("napari-ccf-align", d) for d in DOCKS]
    load, align, register, inspect, sessions = (widget for _, widget in docks)

    def showing(k: int):  # the step's tab in front, as the user has it for that step
        docks[k][0].raise_()
        qtbot.wait(50)
        return viewer

    # 1. the atlas, downloaded from a mirror into an empty cache
    mirror = build_mirror(SHARED_DATA, tmp_path / "mirror")
    with serve(mirror) as (url, requests):
        monkeypatch.setenv(atlas.ENV_BASE_URL, url)
        load.resolution.value = 100
        load.start_atlas_load()
        _wait(qtbot, lambda: len(viewer.layers) == 2)
        assert len(requests) == 3
    _shot(showing(0), screenshot_dir, "e2e_1_atlas")

    # 2. the sample: anisotropic, PIR, uint16; a second channel beside it
    sample, sim = lightsheet_like(template_100)
    first = io.write_volume(sample, tmp_path / "brain_ch1.nii.gz")
    second = io.write_volume(sample.with_data(sample.data // 3), tmp_path / "brain_ch2.nii.gz")
    load.path.value = str(first)
    load.load_user_volume()
    assert "brain_ch1" in viewer.layers and viewer.layers["brain_ch1"].data.dtype == np.uint16
    _shot(showing(0), screenshot_dir, "e2e_2_sample")

    # 3. align: centre on the atlas, a small rotation, a crop that keeps the brain
    _wait(qtbot, lambda: align.moving.value is not None and align.moving.value.name == "brain_ch1")
    align.centre_on_atlas()
    align.rot[2].setValue(3.0)  # the user nudges the rotation about S
    state = model_for(viewer).state
    shown = viewer.layers["brain_ch1"].metadata["ccf_align_volume"]
    model_for(viewer).set(state.__class__(state.rigid, tuple((1, n - 1) for n in shown.shape)))
    _wait(qtbot, lambda: align.worker is None, 30_000)
    _shot(showing(1), screenshot_dir, "e2e_3_aligned")

    # 4. register with the default method, fast settings
    assert register.method.value == "rigid+affine+syn"
    register.iterations.value = 60
    register.syn_iters.value = "20, 10"
    register.syn_resolution.value = 200
    register.run()
    _wait(qtbot, lambda: register.run_button.enabled)
    name = "brain_ch1 (rigid+affine+syn)"
    assert name in viewer.layers, register.status.value
    result = viewer.layers[name].metadata[RESULT_KEY]
    assert "nan" not in register.status.value.lower()
    labels = atlas.read_allen_nrrd(SHARED_DATA / "annotation_100.nrrd", 100)
    brain = ndimage.binary_erosion(np.asarray(labels.data) > 0, iterations=2)  # inside it
    points = template_100.index_to_world(np.argwhere(brain)[::7])
    error = np.linalg.norm(result.to_moving(points) - sim.atlas_to_subject(points), axis=1)
    assert error.mean() < 0.1  # mm: a voxel of the atlas (measured ~0.05)
    _shot(showing(2), screenshot_dir, "e2e_4_registered")

    # 5. every QC view, then the report
    assert inspect.result.value == name  # the newest result is the one inspected
    for key, box in inspect.toggles.items():
        box.value = True
        _wait(qtbot, lambda k=key: inspect.layer_name(k) in viewer.layers, 60_000)
        qtbot.wait(200)
        _shot(showing(3), screenshot_dir, f"e2e_5_inspect_{key}", canvas_only=key != "jacobian")
        assert viewer.layers[inspect.layer_name(key)].visible
        assert "nan" not in inspect.status.value.lower().split(), inspect.status.value
        box.value = False
    inspect.export_report(str(tmp_path / "report"))
    _wait(qtbot, lambda: (tmp_path / "report" / "qc_report.html").is_file(), 120_000)

    # 6. save; reload in a fresh viewer that has only the Session dock
    sessions.save_session(tmp_path / "session")
    _wait(qtbot, lambda: sessions.save_button.enabled and (tmp_path / "session").is_dir())
    fresh = make_napari_viewer(show=True)
    fresh.window.resize(1280, 800)
    (sessions2,) = [fresh.window.add_plugin_dock_widget("napari-ccf-align", "Session")[1]]
    sessions2.load_session(tmp_path / "session")
    _wait(qtbot, lambda: sessions2.save_button.enabled and name in fresh.layers)
    reloaded = fresh.layers[name].metadata[RESULT_KEY]
    np.testing.assert_allclose(reloaded.matrix, result.matrix, atol=1e-9)
    assert model_for(fresh).moving_layer == "brain_ch1"
    _shot(fresh, screenshot_dir, "e2e_6_reloaded")

    # 7. apply to a second channel, to the annotation and to points
    load2 = fresh.window.add_plugin_dock_widget("napari-ccf-align", DOCKS[0])[1]
    load2.path.value = str(second)
    load2.load_user_volume()
    sessions2.direction.value = "atlas"
    sessions2.apply_to("brain_ch2")
    _wait(qtbot, lambda: "brain_ch2 (in atlas)" in fresh.layers)
    ch2 = np.asarray(fresh.layers["brain_ch2 (in atlas)"].data)
    ch1 = np.asarray(fresh.layers[name].data)
    assert np.corrcoef(ch2[brain].ravel(), ch1[brain].ravel())[0, 1] > 0.99  # same brain
    annotation = next(lyr for lyr in fresh.layers if isinstance(lyr, Labels))
    sessions2.direction.value = "sample"
    sessions2.apply_to(annotation.name)
    _wait(qtbot, lambda: f"{annotation.name} (in sample)" in fresh.layers)
    regions = fresh.layers[f"{annotation.name} (in sample)"]
    assert isinstance(regions, Labels) and len(np.unique(regions.data)) > 100
    cells = fresh.add_points(result.to_moving(points[:5]), name="cells")
    sessions2.direction.value = "atlas"
    sessions2.apply_to(cells.name)
    _wait(qtbot, lambda: "cells (in atlas)" in fresh.layers)
    back = fresh.layers["cells (in atlas)"]
    np.testing.assert_allclose(back.data, points[:5], atol=1e-3)
    assert (np.asarray(back.features["region_id"]) > 0).all()  # inside the brain, named
    assert any(isinstance(lyr, Image) and lyr.visible for lyr in fresh.layers)
    _shot(fresh, screenshot_dir, "e2e_7_applied")
    assert errors == []
