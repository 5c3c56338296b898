"""Batch: one recipe over several brains on a dask LocalCluster of 2 worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core import io
from napari_ccf_align.core.errors import NetworkError
from napari_ccf_align.core.register import rigid
from napari_ccf_align.core.runs import batch, headless, session

from .conftest import lightsheet_like


@pytest.fixture(scope="module")
def brains(template_100, tmp_path_factory):
    root = tmp_path_factory.mktemp("brains")
    paths = []
    for k, offset in enumerate([(0.0, 0.0, 0.0), (0.4, -0.3, 0.2)]):
        sample, _ = lightsheet_like(template_100, offset_mm=offset)
        paths.append(io.write_volume(sample, root / f"brain{k}.nii.gz"))
    broken = root / "broken.nii.gz"
    broken.write_bytes(paths[0].read_bytes()[:4000])  # a truncated copy
    return root, paths, broken


def test_local_cluster_registers_every_brain_and_reports_the_broken_one(template_100, brains):
    root, paths, broken = brains
    recipe = headless.Recipe(
        method="rigid", rigid_settings=rigid.RigidSettings(iterations=60), atlas_resolution_um=100
    )
    fixed = headless.Fixed(template_100, None, "test template")
    seen = []
    rows = batch.run_batch(
        recipe,
        [paths[0], broken, paths[1]],
        root / "out",
        fixed,
        workers=2,
        write_report=False,
        on_row=seen.append,
    )
    assert [r.name for r in rows] == ["brain0", "broken", "brain1"]
    assert [r.status for r in rows] == ["ok", "failed", "ok"]
    assert len(seen) == 3  # reported as each finished
    assert "broken.nii.gz is truncated" in rows[1].message
    for row in (rows[0], rows[2]):
        s, _ = session.load(root / "out" / row.name)
        assert row.ncc_after > row.ncc_before
        assert s.moving.path.endswith(f"{row.name}.nii.gz")
    # the two brains differ only by a shift, which centring takes out: the same rotation
    a, _ = session.load(root / "out" / "brain0")
    b, _ = session.load(root / "out" / "brain1")
    np.testing.assert_allclose(a.result.matrix[:3, :3], b.result.matrix[:3, :3], atol=2e-3)
    text = batch.table(rows)
    assert "2 of 3 brains registered." in text and "broken" in text


def test_repeated_file_names_get_their_own_folders():
    assert batch.session_names(["a/x.nii.gz", "b/x.nii.gz", "c/y.tif", "d/x.nrrd"]) == [
        "x",
        "x-2",
        "y",
        "x-3",
    ]


def test_file_names_that_lead_out_or_hide_get_plain_folder_names():
    # '..nii.gz' would otherwise write into the --out root; a 300-character name would not fit
    names = batch.session_names(["a/..nii.gz", "b/.hidden.nrrd", "c/" + "n" * 300 + ".tif"])
    assert names[:2] == ["brain", "hidden"] and names[2] == "n" * batch.MAX_NAME


def test_a_scheduler_that_cannot_be_reached_is_one_sentence(template_100, tmp_path):
    with pytest.raises(NetworkError, match=r"dask scheduler at nonsense .*leave out --scheduler"):
        batch.run_batch(
            headless.Recipe(),
            [tmp_path / "a.nii.gz"],
            tmp_path / "out",
            headless.Fixed(template_100),
            scheduler="nonsense",
        )


def test_no_brains_is_one_sentence(template_100, tmp_path):
    with pytest.raises(Exception, match="No brains were given"):
        batch.run_batch(headless.Recipe(), [], tmp_path, headless.Fixed(template_100))


def test_a_running_scheduler_is_used_when_its_address_is_given(template_100, brains):
    from distributed import LocalCluster

    root, paths, _ = brains
    recipe = headless.Recipe(
        method="rigid", rigid_settings=rigid.RigidSettings(iterations=30), atlas_resolution_um=100
    )
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        rows = batch.run_batch(
            recipe,
            paths[:1],
            root / "on-cluster",
            headless.Fixed(template_100),
            scheduler=cluster.scheduler_address,
            write_report=False,
        )
        assert [r.status for r in rows] == ["ok"]
        # the work ran on the cluster's worker, which still runs after the batch is done
        assert len(cluster.scheduler.workers) == 1
    assert (root / "on-cluster" / "brain0" / "session.json").is_file()
