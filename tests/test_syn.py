"""DIPY SyN engine: Circle-to-C, a known smooth deformation, labels, cancel, memory, settings."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core import align, frames
from napari_ccf_align.core.errors import AffineError, Cancelled, RegistrationError, SettingsError
from napari_ccf_align.core.progress import CancelToken
from napari_ccf_align.core.register import syn
from napari_ccf_align.core.results import qc
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.core.testing.phantom import deformed, smooth_field
from napari_ccf_align.core.volume import Volume

EPE_TOL_VOXELS = 0.5


@pytest.fixture(scope="module")
def circle_to_c():
    from dipy.data import get_fnames

    circle = np.load(get_fnames(name="reg_o")).astype(np.float32)
    c = np.load(get_fnames(name="reg_c")).astype(np.float32)
    fixed = Volume.from_array(c, 1.0, "RA", name="C")
    moving = Volume.from_array(circle, 1.0, "RA", name="circle")
    settings = syn.SynSettings(metric="ssd", level_iters=(200, 100, 50, 25), inv_iter=50)
    events = []
    result = syn.register(fixed, moving, np.eye(3), settings, on_progress=events.append)
    return fixed, moving, result, events


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_circle_to_c_in_2d(circle_to_c):
    fixed, moving, result, events = circle_to_c
    warped = result.warp(fixed, moving)
    c, circle = fixed.data, moving.data
    before = float(((circle - c) ** 2).sum())
    after = float(((warped.data - c) ** 2).sum())
    assert after < 0.1 * before  # SSD falls by more than 90 %
    assert _dice(warped.data > 0.5, c > 0.5) >= 0.95
    jac = qc.jacobian_determinant(result.forward, fixed.spacing)
    assert jac.min() > 0  # no folding
    # progress: one event per iteration, levels coarse to fine, energies as the metric
    assert [e.level for e in events] == sorted(e.level for e in events)
    assert {e.level for e in events} == {0, 1, 2, 3} and all(e.stage == "syn" for e in events)
    assert len(result.trace) == len(events)


def test_our_fields_reproduce_dipys_own_warp(circle_to_c):
    from dipy.align.imwarp import SymmetricDiffeomorphicRegistration
    from dipy.align.metrics import SSDMetric

    fixed, moving, _, _ = circle_to_c
    start = np.eye(3)
    start[:2, 2] = (3.0, -2.0)  # a prealign: our fields must carry it exactly as DIPY does
    sdr = SymmetricDiffeomorphicRegistration(SSDMetric(2), level_iters=[20, 10])
    mapping = sdr.optimize(
        fixed.data, moving.data, static_grid2world=fixed.affine, moving_grid2world=moving.affine,
        prealign=frames.dipy_prealign(start),
    )  # fmt: skip
    grid = fixed
    forward, backward = syn._fields(mapping, grid, start)
    result = syn.SynResult(grid, forward, backward, start, (), 0.0, 0.0, "", syn.SynSettings())
    np.testing.assert_allclose(
        result.warp(fixed, moving).data, mapping.transform(moving.data), atol=1e-4
    )
    np.testing.assert_allclose(
        result.warp_to_sample(fixed, moving, labels=False).data,
        mapping.transform_inverse(fixed.data),
        atol=1e-4,
    )


@pytest.fixture(scope="module")
def deformed_template(template_100):
    d = smooth_field(template_100.shape, template_100.spacing, peak_voxels=5.0)
    return template_100, deformed(template_100, d), d


@pytest.mark.slow
def test_known_smooth_deformation_is_recovered_without_folding(deformed_template):
    template, sample, d = deformed_template
    result = syn.register(template, sample, np.eye(4))
    brain = template.data > align.tissue_threshold(template)
    y = template.index_to_world(np.argwhere(brain))
    error_voxels = np.linalg.norm(result.to_atlas(y) - y - d[brain], axis=1) / 0.1
    assert np.linalg.norm(d[brain], axis=1).mean() / 0.1 > 2  # the test moves voxels...
    assert error_voxels.mean() <= EPE_TOL_VOXELS  # ...and SyN finds where
    assert qc.jacobian_determinant(result.forward, template.spacing).min() > 0
    assert qc.jacobian_determinant(result.backward, template.spacing).min() > 0


def test_labels_go_to_the_sample_with_only_existing_values(circle_to_c):
    fixed, moving, result, _ = circle_to_c
    rng = np.random.default_rng(0)
    labels = fixed.with_data((rng.integers(0, 4, fixed.shape) * 1000 + 7).astype(np.uint32))
    on_sample = result.warp_to_sample(labels, moving, labels=True)
    assert set(np.unique(on_sample.data)) <= set(np.unique(labels.data)) | {0}
    assert on_sample.data.dtype == np.uint32 and on_sample.shape == moving.shape


def test_cancel_mid_level_stops_at_the_next_iteration(template_100):
    # (how long that takes is measured in benchmarks/bench_cancel.py, not asserted here)
    token = CancelToken()
    after_cancel = []

    def on_progress(event):
        if token.cancelled:
            after_cancel.append(event)
        elif event.level == 1:
            token.cancel()

    with pytest.raises(Cancelled, match="cancelled"):
        syn.register(
            template_100, template_100, np.eye(4), syn.SynSettings(level_iters=(5, 200, 200)),
            on_progress=on_progress, cancel=token,
        )  # fmt: skip
    assert token.cancelled and after_cancel == []  # DIPY's next callback raised


def test_a_run_that_would_not_fit_in_memory_is_refused_with_a_resolution():
    with pytest.raises(RegistrationError, match=r"set the working resolution to 50 µm or coarser"):
        syn.check_memory((528, 320, 456), 25.0, available=int(8e9))
    syn.check_memory((114, 132, 80), 100.0, available=int(8e9))  # fits: no error


def test_memory_budget_counts_what_the_run_holds_beside_the_grid():
    from napari_ccf_align.core.volume import Volume

    atlas = Volume.from_array(np.zeros((132, 80, 114), np.float32), (0.1,) * 3, "RAS")
    grid = Volume.from_array(np.zeros((66, 40, 57), np.float32), (0.2,) * 3, "RAS")
    # a 10 µm sample (about 1.2 G voxels; only its shape and spacing are read)
    sample = Volume.grid((1320, 800, 1140), np.diag([0.01, 0.01, 0.01, 1.0]), "s", "RAS")
    held = syn.held_bytes(atlas, sample, grid)
    on_grid = 66 * 40 * 57  # the sample averaged to the 200 µm grid: that many voxels
    assert held == pytest.approx(8 * on_grid + 8 * atlas.data.size, rel=1e-6)
    grid_need = syn.estimated_bytes(on_grid)
    syn.check_memory(grid.shape, 200.0, available=int((grid_need + held) / 0.8) + 1)
    with pytest.raises(RegistrationError, match="needs about"):  # the held part tips it over
        syn.check_memory(grid.shape, 200.0, available=int(grid_need / 0.8) + 1, held=held)
    with pytest.raises(RegistrationError, match="load the atlas at a coarser resolution"):
        syn.check_memory(grid.shape, 200.0, available=int(1.5 * held), held=held)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"metric": "mi"}, "Unknown SyN metric"),
        ({"level_iters": ()}, "level iterations"),
        ({"level_iters": (10, -1)}, "iterations of a level"),
        ({"step_length": 0}, "step length"),
        ({"radius": 0}, "CC radius"),
        ({"working_resolution_um": 0.1}, "working resolution"),
        ({"clip_percentiles": (90, 10)}, "not in order"),
    ],
)
def test_settings_are_checked(changes, match):
    with pytest.raises(SettingsError, match=match):
        syn.SynSettings(**changes)
    assert syn.SynSettings.from_dict(syn.SynSettings().to_dict()) == syn.SynSettings()


def test_syn_in_its_own_process_relays_progress_cancels_and_reraises(circle_to_c):
    from napari_ccf_align.core.register import child, pipeline

    fixed, moving, in_thread, _ = circle_to_c
    events = []
    settings = in_thread.settings
    result = pipeline.run(fixed, moving, "syn", syn_settings=settings, start=np.eye(3),
                          on_progress=events.append, isolate_syn=True)  # fmt: skip
    np.testing.assert_allclose(result.forward, in_thread.forward, atol=1e-4)  # same result
    assert len(events) == len(in_thread.trace) and events[-1].stage == "syn"

    token = CancelToken()
    seen = []

    def cancel_at_level_1(event):
        seen.append(event)
        if event.level == 1:
            token.cancel()

    with pytest.raises(Cancelled):
        child.call("napari_ccf_align.core.register.syn.register", fixed, moving, np.eye(3),
                      syn.SynSettings(metric="ssd", level_iters=(5, 500, 500)),
                      on_progress=cancel_at_level_1, cancel=token)  # fmt: skip
    # stopped inside level 1 (of 500 iterations), never reaching level 2
    assert token.cancelled and max(e.level for e in seen) == 1
    assert sum(e.level == 1 for e in seen) < 100
    with pytest.raises(AffineError, match="affine has shape"):  # the child's error, raised here
        child.call("napari_ccf_align.core.register.syn.register", fixed, moving, np.eye(5))


def test_a_working_resolution_finer_than_the_atlas_is_refused_in_one_sentence(template_100):
    with pytest.raises(SettingsError) as info:
        syn.working_grid(template_100, 50.0)
    assert str(info.value) == (
        "The SyN working resolution 50 µm is finer than the atlas (100 µm): choose 100 µm or "
        "coarser, or load the atlas at 50 µm or finer."
    )
    assert syn.working_grid(template_100, 100.0) is template_100
    assert np.allclose(syn.working_grid(template_100, 200.0).spacing, 0.2)


def test_the_syn_child_runs_nothing_from_the_working_folder(circle_to_c, tmp_path, monkeypatch):
    from napari_ccf_align.core.register import child

    fixed, moving, _, _ = circle_to_c
    planted = tmp_path / "planted"
    planted.mkdir()
    marker = tmp_path / "hijacked"
    for name in ("queue", "pickle", "numpy"):  # modules the child imports by name
        (planted / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('{name}')\n")
    monkeypatch.chdir(planted)
    monkeypatch.syspath_prepend("")  # as `python -m` or an interactive session would
    result = child.call(
        "napari_ccf_align.core.register.syn.register", fixed, moving, np.eye(3),
        syn.SynSettings(metric="ssd", level_iters=(2,)),
    )  # fmt: skip
    assert result.deformable and not marker.exists()
    assert "-I" in child.child_command()


def test_dipy_says_nothing_unless_asked(template_100, caplog, monkeypatch):
    # DIPY logs every level at INFO (to stdout, outside pytest); the progress events say it
    import logging

    monkeypatch.delenv(syn.VERBOSE_ENV, raising=False)
    sim = phantom.simulate_brain(template_100)
    quick = syn.SynSettings(level_iters=(3,), working_resolution_um=200)
    start = align.centre_on_atlas(align.AlignmentState(), sim.volume, template_100)
    with caplog.at_level(logging.INFO, logger="dipy"):
        syn.register(template_100, sim.volume, start.rigid.matrix(), quick, start)
    assert not [r for r in caplog.records if "Optimizing level" in r.getMessage()]
    monkeypatch.setenv(syn.VERBOSE_ENV, "1")  # napari-ccf-align --verbose
    with caplog.at_level(logging.INFO, logger="dipy"):
        syn.register(template_100, sim.volume, start.rigid.matrix(), quick, start)
    assert [r for r in caplog.records if "Optimizing level" in r.getMessage()]


def test_paired_halves_change_no_bit_of_the_result(template_100, monkeypatch):
    from napari_ccf_align.core.register import syn_pairs

    made = []
    real_install = syn_pairs.install

    def recorded(sdr, cc):
        pairs = real_install(sdr, cc)
        made.extend(pairs)
        return pairs

    monkeypatch.setattr(syn_pairs, "install", recorded)
    d = smooth_field(template_100.shape, template_100.spacing, peak_voxels=3.0)
    sample = deformed(template_100, d)
    settings = syn.SynSettings(level_iters=(4, 2), working_resolution_um=200)
    paired = syn.register(template_100, sample, np.eye(4), settings)
    inversions, steps, updates, warps = made
    with syn_pairs.one_at_a_time():
        alone = syn.register(template_100, sample, np.eye(4), settings)
    assert len(made) == 4  # nothing paired one at a time
    assert inversions.paired >= 2 * 4  # two of the four inversions of each iteration
    assert min(steps.paired, updates.paired, warps.paired) >= 4  # the second of each pair
    assert "transform_inverse" not in vars(warps.static_map)  # given back after the run
    np.testing.assert_array_equal(paired.forward, alone.forward)
    np.testing.assert_array_equal(paired.backward, alone.backward)
