"""Atlas: real downloads from a local HTTP server, cache, checksums, cancel; RAS anatomy."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from napari_ccf_align.core import io
from napari_ccf_align.core.errors import (
    AtlasError,
    Cancelled,
    ChecksumError,
    NetworkError,
    UnreadableFileError,
    WriteError,
)
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.progress import CancelToken

from .http_mirror import build_mirror, serve


@pytest.fixture(scope="module")
def mirror(shared_data, tmp_path_factory):
    return build_mirror(shared_data, tmp_path_factory.mktemp("mirror"))


def test_download_then_cache_makes_no_request(mirror, tmp_path):
    events = []
    with serve(mirror) as (url, requests):
        a = atlas.load_atlas(100, cache=tmp_path, base_url=url, on_progress=events.append)
        assert len(requests) == 3
        assert a.template.shape == (114, 132, 80)
        assert a.annotation.shape == (114, 132, 80)
        assert len(a.structures) > 1000
        b = atlas.load_atlas(100, cache=tmp_path, base_url=url)
        assert len(requests) == 3, "the second load must come from the cache"
    np.testing.assert_array_equal(a.template.data, b.template.data)
    downloads = [e for e in events if e.stage == "download"]
    assert downloads and downloads[-1].total > 0
    # every 100 µm file is pinned (the structure graph by its content): nothing is trusted
    # on first use, so there is no notice and no recorded hash
    assert [e for e in events if e.stage == "notice"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "annotation_100.nrrd",
        "average_template_100.nrrd",
        "structure_graph.json",
    ]


def test_downloaded_files_get_the_permissions_the_umask_gives(mirror, tmp_path):
    # pooch's temporary files are private (0600): a lab's shared cache was unreadable
    import stat

    from napari_ccf_align.core import io

    with serve(mirror) as (url, _):
        atlas.load_atlas(100, cache=tmp_path, base_url=url)
    wanted = 0o666 & ~io.current_umask()
    for name in ("average_template_100.nrrd", "annotation_100.nrrd", "structure_graph.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == wanted, name


def test_a_file_without_a_published_checksum_is_recorded_and_said_once(tmp_path):
    # the 10, 25 and 50 µm files: their SHA-256 is recorded on first use, in one line
    events = []
    f = tmp_path / "average_template_50.nrrd"
    f.write_bytes(b"a first download")
    atlas._record_hash(tmp_path, f.name, f, events.append)
    atlas._record_hash(tmp_path, f.name, f, events.append)  # known now: nothing said
    recorded = json.loads((tmp_path / "recorded_sha256.json").read_text())
    (notice,) = [e.message for e in events if e.stage == "notice"]
    assert notice.startswith("average_template_50.nrrd has no published checksum")
    assert recorded[f.name][:12] in notice and "--forget average_template_50.nrrd" in notice
    assert atlas.forget(tmp_path, f.name) == [f.name, "its recorded SHA-256"]
    assert not f.exists() and f.name not in json.loads(
        (tmp_path / "recorded_sha256.json").read_text()
    )


@pytest.mark.parametrize("form", ["wrapped", "hacked"])
def test_the_structure_graph_is_pinned_by_its_content(shared_data, tmp_path, form):
    # the API serves the tree wrapped as {"msg": [root]} (other bytes, the same content):
    # accepted; a mirror's tree with every name changed is refused and not kept
    root = build_mirror(shared_data, tmp_path / "mirror")
    graph = json.loads((shared_data / "allen_structure_graph.json").read_text())
    if form == "hacked":
        stack = [graph]
        while stack:
            node = stack.pop()
            node["name"] = "HACKED " + node["name"]
            stack.extend(node.get("children") or [])
    (root / "structure_graph_download/1.json").write_text(json.dumps({"msg": [graph]}))
    cache = tmp_path / "cache"
    with serve(root) as (url, _):
        if form == "wrapped":
            a = atlas.load_atlas(100, cache=cache, base_url=url)
            assert a.structures.by_acronym("MOB").name == "Main olfactory bulb"
            return
        with pytest.raises(ChecksumError, match=r"not the Allen CCF v3 ontology"):
            atlas.load_atlas(100, cache=cache, base_url=url)
    assert not (cache / "structure_graph.json").exists()


def test_corrupted_cache_file_is_downloaded_again(mirror, tmp_path):
    with serve(mirror) as (url, requests):
        atlas.load_atlas(100, annotation=False, cache=tmp_path, base_url=url)
        path = tmp_path / "average_template_100.nrrd"
        path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
        atlas.load_atlas(100, annotation=False, cache=tmp_path, base_url=url)
        assert requests.count("/average_template/average_template_100.nrrd") == 2
    assert io.sha256_of(path) == atlas.KNOWN_SHA256["average_template_100.nrrd"]


def test_corrupted_bytes_give_checksum_error_and_no_file(mirror, tmp_path):
    with serve(mirror, mode="corrupt") as (url, _), pytest.raises(ChecksumError, match="SHA-256"):
        atlas.load_atlas(100, annotation=False, structures=False, cache=tmp_path, base_url=url)
    assert list(tmp_path.iterdir()) == []


def test_truncated_download_leaves_no_file(mirror, tmp_path):
    with serve(mirror, mode="cut") as (url, _), pytest.raises((NetworkError, ChecksumError)):
        atlas.load_atlas(100, annotation=False, structures=False, cache=tmp_path, base_url=url)
    assert list(tmp_path.iterdir()) == []


def test_stopped_server_gives_network_error_naming_url_and_cache(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    with pytest.raises(NetworkError, match=r"127\.0\.0\.1.*place it at .*average_template_100"):
        atlas.load_atlas(100, cache=tmp_path, base_url=f"http://127.0.0.1:{port}/")
    assert list(tmp_path.iterdir()) == []


def test_cancel_mid_download_leaves_no_file(mirror, tmp_path):
    token = CancelToken()

    def on_progress(event):
        if event.done > 100_000:
            token.cancel()

    with serve(mirror, mode="slow") as (url, _), pytest.raises(Cancelled, match="cancelled"):
        atlas.load_atlas(
            100,
            annotation=False,
            structures=False,
            cache=tmp_path,
            base_url=url,
            on_progress=on_progress,
            cancel=token,
        )
    assert list(tmp_path.iterdir()) == []


def test_bad_resolution():
    with pytest.raises(AtlasError, match="choose 10, 25, 50 or 100"):
        atlas.load_atlas(30)


def test_disk_full_during_download_says_so(tmp_path, monkeypatch):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atlas.pooch, "retrieve", full)
    with pytest.raises(WriteError, match="is full"):
        atlas.load_atlas(100, cache=tmp_path, base_url="http://127.0.0.1:9/")


def test_unwritable_cache_file_in_place_of_folder(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with pytest.raises(WriteError, match="not writable"):
        atlas.load_atlas(100, cache=blocker)


def test_download_size_is_known_before_download(tmp_path):
    files = atlas.remote_files(100, base_url="http://127.0.0.1:9/")
    assert atlas.download_size(files[:2], tmp_path) == (749_680 + 202_483, 0)
    assert atlas.remote_files(25)[0].size == 32_998_960


# ------------------------------------------------------------------ anatomy on the real files


@pytest.fixture(scope="module")
def real_atlas(shared_data):
    return atlas.load_atlas_files(
        shared_data / "average_template_100.nrrd",
        shared_data / "annotation_100.nrrd",
        shared_data / "allen_structure_graph.json",
    )


def _mean_world(real_atlas, sid, axis):
    mask = real_atlas.structures.mask(real_atlas.annotation.data, sid)
    return real_atlas.annotation.index_to_world(np.argwhere(mask).mean(0))[axis]


def test_ras_grid(real_atlas):
    assert real_atlas.resolution_um == 100
    assert real_atlas.template.shape == (114, 132, 80)
    np.testing.assert_allclose(real_atlas.template.affine, np.diag([0.1, 0.1, 0.1, 1]))
    np.testing.assert_array_equal(real_atlas.template.affine, real_atlas.annotation.affine)


def test_anatomy_lands_where_ras_says(real_atlas):
    mob, ctx, cb = (_mean_world(real_atlas, s, 1) for s in (507, 315, 512))
    assert mob > ctx > cb  # anterior: olfactory bulb > isocortex > cerebellum
    assert mob == pytest.approx(11.7, abs=0.2) and cb == pytest.approx(1.4, abs=0.2)
    iso, th, my = (_mean_world(real_atlas, s, 2) for s in (315, 549, 354))
    assert iso > th > my  # superior: isocortex > thalamus > medulla
    assert iso == pytest.approx(5.4, abs=0.2) and my == pytest.approx(1.9, abs=0.2)


def test_brain_mask_is_mirror_symmetric(real_atlas):
    brain = real_atlas.annotation.data > 0
    assert (brain & brain[::-1]).sum() / brain.sum() >= 0.97
    # and the two hemispheres sit either side of R = 5.7 mm (the grid's middle)
    left = real_atlas.structures.mask(real_atlas.annotation.data, 315)[:57].sum()
    right = real_atlas.structures.mask(real_atlas.annotation.data, 315)[57:].sum()
    assert abs(left - right) / (left + right) < 0.03


def test_structure_table_both_graph_forms(shared_data):
    graph = json.loads((shared_data / "allen_structure_graph.json").read_text())
    bare = atlas.StructureTable.from_graph(graph)
    wrapped = atlas.StructureTable.from_graph({"msg": [graph]})
    assert len(bare) == len(wrapped) > 1000
    mob = bare.by_acronym("MOB")
    assert mob.id == 507 and mob.name == "Main olfactory bulb"
    # which major region contains a layer of primary motor cortex?
    mo1 = bare.by_acronym("MOp1")
    assert bare.region_of(mo1.id, [512, 315, 549]) == 315
    assert 8 in bare.ancestors(mo1.id) and bare[997].depth == 0
    assert bare.colors([507])[507][3] == 1.0


def test_cancel_while_the_server_stalls_returns_at_once_and_keeps_nothing(mirror, tmp_path):
    import threading
    import time

    from . import http_mirror

    token = CancelToken()
    first = threading.Event()

    def on_progress(event):
        first.set()

    def cancel_soon():
        first.wait(10)
        time.sleep(0.3)  # the server is silent by now
        token.cancel()

    threading.Thread(target=cancel_soon, daemon=True).start()
    with serve(mirror, mode="stall") as (url, _), pytest.raises(Cancelled, match="cancelled"):
        atlas.load_atlas(
            100, annotation=False, structures=False, cache=tmp_path, base_url=url,
            on_progress=on_progress, cancel=token,
        )  # fmt: skip
    assert not http_mirror.stall_ended.is_set()  # returned during the stall, not after it
    assert not (tmp_path / "average_template_100.nrrd").exists()
    # the abandoned download gives up at the read timeout and removes its temporary file
    deadline = time.perf_counter() + atlas.READ_TIMEOUT_S + 5
    while list(tmp_path.iterdir()) and time.perf_counter() < deadline:
        time.sleep(0.2)
    assert list(tmp_path.iterdir()) == []


def test_an_html_page_served_as_the_structure_graph_is_deleted_not_recorded(
    mirror, tmp_path_factory
):
    root = tmp_path_factory.mktemp("html_mirror")
    import shutil

    shutil.copytree(mirror, root, dirs_exist_ok=True)
    (root / "structure_graph_download/1.json").write_text("<html><body>Error 503</body></html>")
    cache = tmp_path_factory.mktemp("cache")
    with serve(root) as (url, _), pytest.raises(UnreadableFileError) as info:
        atlas.load_atlas(
            100, cache=cache, base_url=url, structures_url=url + "structure_graph_download/1.json"
        )
    assert "not an Allen structure graph" in str(info.value)
    assert str(cache / "structure_graph.json") in str(info.value)  # names the path
    assert not (cache / "structure_graph.json").exists()
    recorded = (
        json.loads((cache / "recorded_sha256.json").read_text())
        if (cache / "recorded_sha256.json").exists()
        else {}
    )
    assert "structure_graph.json" not in recorded


def test_a_label_volume_given_as_the_template_is_refused(shared_data):
    with pytest.raises(ChecksumError, match="like a label volume"):
        atlas.load_atlas_files(shared_data / "annotation_100.nrrd")


def test_region_lookups_and_damaged_graphs_are_sentences(shared_data):
    from napari_ccf_align.core.errors import UnknownRegionError

    table = atlas.StructureTable.from_file(shared_data / "allen_structure_graph.json")
    with pytest.raises(UnknownRegionError, match="not in the Allen structure ontology"):
        table[123456789]
    with pytest.raises(UnknownRegionError, match="acronym 'mob'"):
        table.by_acronym("mob")
    node = {"id": 1, "acronym": "a", "name": "a", "parent_structure_id": 2, "children": [
        {"id": 2, "acronym": "b", "name": "b", "parent_structure_id": 1}]}  # fmt: skip
    with pytest.raises(UnreadableFileError, match="parent links loop"):
        atlas.StructureTable.from_graph(node)
    twice = {"id": 1, "acronym": "a", "name": "a", "children": [
        {"id": 1, "acronym": "a", "name": "a"}]}  # fmt: skip
    with pytest.raises(UnreadableFileError, match="twice"):
        atlas.StructureTable.from_graph(twice)


def test_regions_grouped_at_a_depth_of_the_ontology(shared_data):
    table = atlas.StructureTable.from_file(shared_data / "allen_structure_graph.json")
    mop1, mo, ca1 = (table.by_acronym(a).id for a in ("MOp1", "MO", "CA1"))
    ids = np.array([[0, mop1], [ca1, 123456789]], np.uint32)  # background, a layer, CA1, unknown
    grouped = table.at_depth(ids, 6)
    assert grouped[0, 0] == 0 and grouped[0, 1] == mo and grouped[1, 1] == 123456789
    assert table[int(grouped[1, 0])].depth <= 6 and table.contains(int(grouped[1, 0]), ca1)
    assert table.at_depth(ids, 99).tolist() == ids.tolist()  # deeper than any: unchanged


def test_coarser_labels_of_renumbered_labels_match_the_voxelwise_grouping(shared_data):
    table = atlas.StructureTable.from_file(shared_data / "allen_structure_graph.json")
    annotation = atlas.read_allen_nrrd(shared_data / "annotation_100.nrrd", 100, "annotation")
    compact, _ = atlas.compact_labels(annotation)
    assert atlas.compact_labels(compact)[0] is compact  # renumbered once, never twice
    coarse = atlas.coarser_labels(compact, table, 6)
    voxelwise = table.at_depth(np.asarray(annotation.data), 6)
    np.testing.assert_array_equal(atlas.structure_id_volume(coarse).data, voxelwise)
    assert len(coarse.metadata["structure_ids"]) < len(compact.metadata["structure_ids"])
