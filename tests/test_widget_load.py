"""Load widget: atlas download through the real code, region names on hover, user volumes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from napari.layers import Image, Labels

from napari_ccf_align.core import io
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.volume import Volume
from napari_ccf_align.plugin.layer_data import image_layer_data
from napari_ccf_align.plugin.widgets._layers import add_layer_data
from napari_ccf_align.plugin.widgets._view import camera
from napari_ccf_align.plugin.widgets.load import LoadWidget

from .http_mirror import build_mirror, serve

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def mirror(shared_data, tmp_path_factory):
    return build_mirror(shared_data, tmp_path_factory.mktemp("mirror"))


def _wait_idle(qtbot, widget, timeout=60_000):
    qtbot.waitUntil(lambda: widget.load_atlas.enabled, timeout=timeout)


def test_load_atlas_adds_both_layers_and_hover_names_the_region(
    make_napari_viewer, qtbot, mirror, tmp_path, monkeypatch, screenshot_dir
):
    viewer = make_napari_viewer()
    widget = LoadWidget(viewer)
    widget.cache.value = str(tmp_path)
    widget.resolution.value = 100
    with serve(mirror) as (url, _):
        monkeypatch.setenv(atlas.ENV_BASE_URL, url)
        qtbot.waitUntil(lambda: "MB" in widget.size.value, timeout=10_000)
        assert "1.0 MB" in widget.size.value  # 749,680 + 202,483 bytes, plus the graph
        widget.start_atlas_load()
        qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=60_000)
        _wait_idle(qtbot, widget)
    template, annotation = viewer.layers
    assert isinstance(template, Image) and isinstance(annotation, Labels)
    # world extent (voxel centres): 114 x 132 x 80 voxels of 0.1 mm from the origin, (R, A, S)
    lo, hi = template.extent.world
    np.testing.assert_allclose(lo, [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(hi, [11.3, 13.1, 7.9], atol=1e-9)
    np.testing.assert_allclose(annotation.extent.world, template.extent.world)
    assert viewer.dims.axis_labels == ("L→R (mm)", "P→A (mm)", "I→S (mm)")
    assert viewer.dims.order == (1, 2, 0)  # coronal: slice along A, S vertical
    assert camera(viewer).orientation2d == ("up", "right")  # dorsal up

    table = atlas.StructureTable.from_file(tmp_path / "structure_graph.json")
    kept = annotation.metadata["ccf_align_volume"]
    ids = kept.metadata["structure_ids"][annotation.data]  # back to Allen ids
    raw = atlas.read_allen_nrrd(tmp_path / "annotation_100.nrrd")
    np.testing.assert_array_equal(ids, raw.data)
    for sid in (507, 512, 315):  # MOB, CB, isocortex: a voxel of each names its region
        vox = np.argwhere(table.mask(ids, sid))[0]
        label = int(ids[tuple(vox)])
        world = annotation.data_to_world(vox)
        viewer.dims.set_point(1, world[1])  # show the coronal slice holding the voxel
        viewer.cursor.position = tuple(world)  # and hover over it
        status = annotation.get_status(
            viewer.cursor.position, dims_displayed=list(viewer.dims.displayed), world=True
        )
        text = status["coordinates"] if isinstance(status, dict) else str(status)
        assert f"acronym: {table[label].acronym}" in text
        assert table[label].name in text
        assert table.contains(sid, label)

    viewer.dims.set_point(1, 7.0)
    viewer.reset_view()
    viewer.screenshot(str(screenshot_dir / "load_atlas_coronal.png"), canvas_only=False)


def test_cancelled_download_adds_nothing(make_napari_viewer, qtbot, mirror, tmp_path, monkeypatch):
    viewer = make_napari_viewer()
    widget = LoadWidget(viewer)
    widget.cache.value = str(tmp_path)
    widget.resolution.value = 100
    with serve(mirror, mode="slow") as (url, _):
        monkeypatch.setenv(atlas.ENV_BASE_URL, url)
        widget.start_atlas_load()
        qtbot.waitUntil(lambda: widget.bar.value > 0, timeout=20_000)
        widget.cancel_load()
        _wait_idle(qtbot, widget)
    assert len(viewer.layers) == 0
    assert "cancelled" in widget.status.value
    for p in tmp_path.iterdir():  # whatever is kept is whole: no partial file anywhere
        assert p.suffix != ".nrrd" or io.sha256_of(p) == atlas.KNOWN_SHA256[p.name]
        assert not p.name.startswith("tmp")


def test_user_volume_from_file_is_placed_in_ras(make_napari_viewer, tmp_path):
    v = Volume.from_array(
        np.random.default_rng(0).random((20, 30, 25)).astype(np.float32),
        (0.05, 0.04, 0.03),
        "PIR",
        origin_mm=(1, 2, 3),
        name="brain",
    )
    path = io.write_volume(v, tmp_path / "brain.nii.gz")
    viewer = make_napari_viewer()
    widget = LoadWidget(viewer)
    widget.path.value = str(path)
    assert widget.orientation.value == "PIR"
    assert [round(b.value, 2) for b in widget.voxel] == [50.0, 40.0, 30.0]
    layer = widget.load_user_volume()
    for i in [(0, 0, 0), (19, 29, 24), (5, 6, 7)]:
        world = v.index_to_world(np.asarray(i, float))
        j = np.rint(layer.world_to_data(world)).astype(int)
        assert layer.data[tuple(j)] == v.data[i]


def test_tiff_needs_a_code_and_a_wrong_code_shows_in_the_projections(
    make_napari_viewer, tmp_path, notifications, shared_data, screenshot_dir, qtbot
):
    raw = atlas.read_allen_nrrd(shared_data / "average_template_100.nrrd")
    # store the RAS template as a TIFF stack in PIR order, as a microscope might
    pir = raw.reoriented("PIR")
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, pir.data, photometric="minisblack")
    viewer = make_napari_viewer()
    widget = LoadWidget(viewer)
    widget.path.value = str(path)
    assert widget.load_user_volume() is None
    assert notifications[-1][0] == "error" and "orientation" in notifications[-1][1]
    widget.orientation.value = "asl"
    widget.style.value = "brainglobe"
    for box in widget.voxel:
        box.value = 100.0
    layer = widget.load_user_volume()
    assert layer is not None
    np.testing.assert_array_equal(layer.data, raw.data)  # back in RAS order, same voxels
    assert widget.orientation.value == "asl"  # loading did not overwrite the fields
    widget.check_orientation()
    coronal = widget.view.figure.axes[0]  # the volume's coronal projection, top left
    assert [t.get_text() for t in coronal.texts] == ["L", "R", "I", "S"]
    assert coronal.get_ylabel() == "coronal"
    np.testing.assert_allclose(coronal.get_xlim(), (-0.05, 11.35))  # R extent of the brain
    # live: a wrong code redraws the view at once, upside down against the atlas
    widget.orientation.value = "asr"
    qtbot.waitUntil(lambda: "as PIL" in widget.status.value, timeout=5_000)
    widget.view.figure.savefig(screenshot_dir / "orientation_check.png")


def test_atlas_from_local_files_without_network(make_napari_viewer, shared_data):
    viewer = make_napari_viewer()
    widget = LoadWidget(viewer)
    widget.local_template.value = str(shared_data / "average_template_100.nrrd")
    widget.local_annotation.value = str(shared_data / "annotation_100.nrrd")
    widget.local_structures.value = str(shared_data / "allen_structure_graph.json")
    widget.load_atlas_from_files()
    template, annotation = viewer.layers
    assert template.name == "Allen CCF template (100 µm)" and annotation.data.shape == (
        114,
        132,
        80,
    )
    assert "acronym" in annotation.features.columns


def test_missing_local_template_is_one_sentence(make_napari_viewer, notifications):
    widget = LoadWidget(make_napari_viewer())
    widget.load_atlas_from_files()
    assert notifications[-1] == (
        "error",
        "No template file was picked: pick average_template_<res>.nrrd.",
    )


def test_existing_layer_is_placed_with_the_given_code(
    make_napari_viewer, notifications, template_100
):
    viewer = make_napari_viewer()
    stack = viewer.add_image(np.asarray(template_100.reoriented("PIR").data), name="stack")
    widget = LoadWidget(viewer)
    widget.source.value = "layer"
    widget.layer.value = stack
    # opened by napari's own reader: nothing is guessed (not 1000 µm, not RAS)
    assert widget.orientation.value == "" and [b.value for b in widget.voxel] == [0, 0, 0]
    assert "opened by another reader" in widget.status.value
    assert widget.load_user_volume() is None
    assert notifications[-1] == (
        "error",
        "No orientation code is given: type one letter per axis (e.g. PIR, or asl in "
        "BrainGlobe style); it is never guessed.",
    )
    widget.orientation.value = "PIR"
    for box in widget.voxel:
        box.value = 100.0
    layer = widget.load_user_volume()
    assert layer.name == "stack (RAS)" and layer is not stack
    np.testing.assert_array_equal(layer.data, template_100.data)
    np.testing.assert_allclose(np.diag(layer.affine.affine_matrix)[:3], 0.1)


def test_a_second_channel_is_a_new_layer_and_the_same_file_is_not_loaded_twice(
    make_napari_viewer, tmp_path, template_100
):
    # docked as users get it: a second file of the same name (channel 2 in its own folder)
    # must not replace the first; pressing Load again on the same file adds nothing
    v = Volume.from_array(
        (np.random.default_rng(0).random((20, 30, 25)) * 4000).astype(np.uint16),
        (0.05, 0.04, 0.03),
        "PIR",
        name="brain",
    )
    (tmp_path / "ch1").mkdir()
    (tmp_path / "ch2").mkdir()
    first = io.write_volume(v, tmp_path / "ch1" / "brain.nii.gz")
    second = io.write_volume(v.with_data(v.data // 2), tmp_path / "ch2" / "brain.nii.gz")
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Load volume and atlas")
    add_layer_data(viewer, image_layer_data(template_100, name="atlas"))
    widget.path.value = str(first)
    one = widget.load_user_volume()
    widget.path.value = str(second)
    two = widget.load_user_volume()
    assert (one.name, two.name) == ("brain", "brain [2]")
    np.testing.assert_array_equal(viewer.layers["brain"].data // 2, viewer.layers["brain [2]"].data)
    widget.path.value = str(first)
    again = widget.load_user_volume()
    assert again.name == "brain" and len(viewer.layers) == 3
    # from a layer: the choice stays on the user's layer as layers come and go, never the atlas
    widget.source.value = "layer"
    widget.layer.value = viewer.layers["brain [2]"]
    viewer.add_points([[0, 0, 0]], name="cells")
    assert widget.layer.value.name == "brain [2]"
    assert "atlas" not in [name for name, _ in widget._layer_choices()]


def test_brainglobe_atlas_loads_in_the_docked_widget(
    make_napari_viewer, qtbot, tmp_path, screenshot_dir
):
    """The Load dock lists the installed BrainGlobe atlas first and loads it as the atlas
    layers (named after it, region names and its hemisphere map kept), in a fresh viewer."""
    pytest.importorskip("brainglobe_atlasapi", reason="brainglobe-atlasapi is not installed")
    from napari_ccf_align.core.io import brainglobe
    from napari_ccf_align.core.testing import brainglobe_folder
    from napari_ccf_align.plugin.layer_data import HEMISPHERES_KEY
    from napari_ccf_align.plugin.widgets._layers import is_atlas

    from .test_brainglobe_atlas import small_atlas

    source = small_atlas()
    brainglobe_folder.write_brainglobe_atlas(tmp_path, "allen_mouse_100um", source)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(brainglobe.ENV_BRAINGLOBE_DIR, str(tmp_path))
        viewer = make_napari_viewer()
        _, widget = viewer.window.add_plugin_dock_widget(
            "napari-ccf-align", "Load volume and atlas"
        )
        assert widget.bg_name.choices[0] == "allen_mouse_100um"  # installed, so listed first
        assert widget.bg_name.value == "allen_mouse_100um"
        widget.start_brainglobe_load()
        qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=60_000)
        qtbot.waitUntil(lambda: widget.load_bg.enabled, timeout=10_000)
    template, annotation = viewer.layers
    assert template.name == "allen_mouse_100um template"
    assert annotation.name == "allen_mouse_100um annotation"
    assert is_atlas(template) and is_atlas(annotation)
    np.testing.assert_allclose(template.extent.world, [[0, 0, 0], [11.3, 13.1, 7.9]], atol=1e-9)
    assert "acronym" in annotation.features.columns
    assert annotation.metadata[HEMISPHERES_KEY].shape == annotation.data.shape
    assert "version 1.2" in widget.status.value
    viewer.window.resize(1100, 800)
    viewer.screenshot(str(screenshot_dir / "load_brainglobe.png"), canvas_only=False)


def test_own_template_loads_as_the_atlas_in_the_docked_widget(
    make_napari_viewer, qtbot, tmp_path, notifications
):
    """Your own template (and labels on its grid) from files becomes the atlas layers; a
    bare TIFF without a voxel size, or a garbled voxel size, is one sentence."""
    from napari_ccf_align.core.runs import session
    from napari_ccf_align.core.testing.small_atlas import small_atlas
    from napari_ccf_align.plugin.widgets._layers import is_atlas

    source = small_atlas()
    template = io.write_volume(source.template, tmp_path / "lab_average.nii.gz")
    labels = io.write_volume(source.annotation, tmp_path / "lab_labels.nii.gz")
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Load volume and atlas")
    widget.own_template.value = str(template)
    widget.own_labels.value = str(labels)
    widget.load_own_template()
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=30_000)
    qtbot.waitUntil(lambda: widget.load_own.enabled, timeout=10_000)
    shown, regions = viewer.layers
    assert shown.name == "lab_average template" and regions.name == "lab_average annotation"
    assert is_atlas(shown) and is_atlas(regions)
    np.testing.assert_allclose(shown.extent.world, [[0, 0, 0], [11.3, 13.1, 7.9]], atol=1e-6)
    assert "loaded as the atlas with its labels" in widget.status.value
    kept = shown.metadata["ccf_align_volume"]
    assert session.record_atlas(kept).kind == "volume"  # a session embeds it

    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, np.zeros((8, 9, 10), np.uint16))
    widget.own_template.value = str(bare)
    widget.own_labels.value = ""
    widget.own_code.value = "PIR"
    widget.load_own_template()
    qtbot.waitUntil(lambda: widget.load_own.enabled and "voxel size" in widget.status.value,
                    timeout=10_000)  # fmt: skip
    assert "bare.tif has no voxel size in its metadata" in widget.status.value
    widget.own_size.value = "25 x"
    assert widget.load_own_template() is None
    assert notifications[-1] == (
        "error",
        "Voxel size '25 x' is not one or three positive numbers of µm: type e.g. 25 or 25 25 25.",
    )
