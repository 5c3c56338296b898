"""BrainGlobe atlases through brainglobe-atlasapi, offline: a BrainGlobe-format atlas folder
is built from the Allen 100 µm files (or a phantom) and read back through the atlas API."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import AtlasError
from napari_ccf_align.core.io import atlas, brainglobe
from napari_ccf_align.core.volume import Volume
from tests.conftest import SHARED_DATA

pytest.importorskip("brainglobe_atlasapi", reason="brainglobe-atlasapi is not installed")

NAME = "allen_mouse_100um"


def small_atlas() -> atlas.Atlas:
    """The Allen 100 µm atlas when ../shared has it, else a phantom with two labelled regions."""
    from napari_ccf_align.core.testing.small_atlas import small_atlas as at_hand

    return at_hand(SHARED_DATA)


@pytest.fixture(scope="module")
def source() -> atlas.Atlas:
    return small_atlas()


@pytest.fixture(scope="module")
def bg_folder(source, tmp_path_factory):
    from napari_ccf_align.core.testing import brainglobe_folder

    folder = tmp_path_factory.mktemp("brainglobe")
    brainglobe_folder.write_brainglobe_atlas(folder, NAME, source, version="1.2")
    return folder


@pytest.mark.parametrize("code", frames.all_orientation_codes(3))
def test_brainglobe_codes_mean_what_brainglobe_space_means(code):
    """Our reading of a BrainGlobe code sends every voxel where brainglobe-space sends it."""
    bgs = pytest.importorskip("brainglobe_space")
    shape = (4, 5, 6)
    bg_code = frames.to_brainglobe(code)
    ours = Volume.from_array(np.zeros(shape), 1.0, bg_code, "brainglobe")
    ras = ours.reoriented("RAS")
    points = np.array([[0, 0, 0], [3, 1, 2], [1, 4, 5], [2, 2, 0]], float)
    expected = bgs.AnatomicalSpace(bg_code, shape).map_points_to("lpi", points)  # lpi = RAS
    got = ras.world_to_index(ours.index_to_world(points))
    # brainglobe-space flips a point p to (n - p), a voxel-edge convention, where a voxel
    # centre goes to (n - 1 - p): compare the steps between points (axis order and sign)
    np.testing.assert_allclose(got - got[0], expected - expected[0], atol=1e-9)


def test_folder_reads_back_as_the_same_ras_atlas(source, bg_folder):
    got = brainglobe.load_brainglobe_atlas(NAME, bg_folder)
    assert got.version == "1.2" and got.name == NAME
    np.testing.assert_array_equal(got.template.data, source.template.data)
    np.testing.assert_allclose(got.template.affine, source.template.affine, atol=1e-12)
    np.testing.assert_array_equal(got.annotation.data, source.annotation.data)
    assert got.structures.content_sha256() == source.structures.content_sha256()
    assert got.template.metadata["brainglobe_name"] == NAME
    # the hemisphere map: 2 (right) where x lies right of the midline, 1 left
    centre = got.template.centre_mm[0]
    ijk = np.argwhere(np.ones(got.hemispheres.shape, bool))[::997]
    x = got.hemispheres.index_to_world(ijk)[:, 0]
    side = got.hemispheres.data[tuple(ijk.T)]
    assert np.all(side[x > centre + 0.06] == 2) and np.all(side[x < centre - 0.06] == 1)


def test_the_api_itself_reads_the_folder_in_asr(bg_folder, source):
    """BrainGlobe's own class opens the folder offline, and its array in ``asr`` runs
    Posterior, Inferior, Left (nibabel PIL) through our frames."""
    from brainglobe_atlasapi import BrainGlobeAtlas

    bg = BrainGlobeAtlas(NAME, brainglobe_dir=bg_folder, check_latest=False)
    assert bg.orientation == "asr"
    raw = Volume.from_array(bg.reference, 0.1, "PIL").reoriented("RAS")
    np.testing.assert_array_equal(raw.data, source.template.data)


def test_unknown_name_gets_a_sentence_with_close_names(tmp_path):
    with pytest.raises(AtlasError, match=r"not a BrainGlobe atlas name .*allen_mouse_25um"):
        brainglobe.load_brainglobe_atlas("allen_mouse_26um", tmp_path)


def test_missing_api_names_the_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_brainglobe(name, *args, **kwargs):
        if name.startswith("brainglobe_atlasapi"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_brainglobe)
    with pytest.raises(AtlasError, match=r"pip install 'napari-ccf-align\[brainglobe\]'"):
        brainglobe.load_brainglobe_atlas(NAME)


def test_damaged_structures_are_named(bg_folder, tmp_path):
    import shutil

    broken = tmp_path / "bg"
    shutil.copytree(bg_folder, broken)
    (broken / f"{NAME}_v1.2" / "structures.json").write_text(json.dumps([{"acronym": "x"}]))
    with pytest.raises(AtlasError, match="it is damaged; delete its folder"):
        brainglobe.load_brainglobe_atlas(NAME, broken)


@pytest.mark.slow
def test_register_apply_and_replay_with_a_brainglobe_atlas(source, bg_folder, tmp_path):
    """``register --atlas NAME``: the session records the atlas's name and version, apply puts
    its annotation on the sample through the API again, and a replay onto another version's
    grid is refused."""
    from napari_ccf_align.cli import main
    from napari_ccf_align.core import io
    from napari_ccf_align.core.testing import brainglobe_folder
    from tests.conftest import lightsheet_like

    sample, _ = lightsheet_like(source.template)
    io.write_volume(sample, tmp_path / "brain.nii.gz")
    flags = ["--brainglobe-dir", str(bg_folder), "--quiet", "--no-report"]
    out = tmp_path / "s"
    assert (
        main(
            [
                "register",
                str(tmp_path / "brain.nii.gz"),
                "--atlas",
                NAME,
                "--method",
                "affine",
                "--out",
                str(out),
                *flags,
            ]
        )
        == 0
    )
    record = json.loads((out / "session.json").read_text())["atlas"]
    assert record["kind"] == "brainglobe" and record["name"] == NAME and record["version"] == "1.2"
    assert not (out / "fixed.nii.gz").exists()  # reloaded through the API, not embedded
    rows = (out / "volumes.csv").read_text().splitlines()
    assert rows[0].startswith("structure_id") and len(rows) > 2

    target = tmp_path / "ann.nii.gz"
    assert (
        main(
            [
                "apply",
                str(out),
                "annotation",
                "--to",
                "sample",
                "--out",
                str(target),
                "--brainglobe-dir",
                str(bg_folder),
            ]
        )
        == 0
    )
    on_sample = io.read_volume(target)
    saved = io.read_volume(out / "annotation_in_sample.nii.gz")
    np.testing.assert_array_equal(on_sample.data, saved.data)

    other = tmp_path / "bg2"  # the same atlas name, another version on a cropped grid
    smaller = atlas.Atlas(
        100,
        source.template.cropped([(0, 100), (0, 120), (0, 70)]),
        source.annotation.cropped([(0, 100), (0, 120), (0, 70)]),
        source.structures,
    )
    brainglobe_folder.write_brainglobe_atlas(other, NAME, smaller, version="1.3")
    with pytest.raises(AtlasError, match=r"not the one this session registered to \(version 1.2"):
        from napari_ccf_align.core.runs import headless, session

        saved_session, folder = session.load(out)
        headless.fixed_of_session(saved_session, folder, brainglobe_folder=other)


def test_atlas_name_and_resolution_together_are_refused(tmp_path, capsys):
    from napari_ccf_align.cli import main

    (tmp_path / "b.nii.gz").write_bytes(b"")
    code = main(
        [
            "register",
            str(tmp_path / "b.nii.gz"),
            "--atlas",
            NAME,
            "--atlas-resolution",
            "25",
            "--out",
            str(tmp_path / "s"),
        ]
    )
    assert code == 2
    assert "both name the atlas" in capsys.readouterr().err
