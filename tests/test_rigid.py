"""SimpleITK engine: known transforms recovered, cancel, and one sentence per bad input."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import SimpleITK as sitk

from napari_ccf_align.core import align, frames
from napari_ccf_align.core.errors import (
    Cancelled,
    EmptyVolumeError,
    RegistrationError,
    SettingsError,
)
from napari_ccf_align.core.progress import CancelToken
from napari_ccf_align.core.register import rigid
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.core.volume import Volume, to_sitk

ERROR_TOL_MM = 0.05  # mean displacement over the brain; half a voxel of the 100 µm atlas


@pytest.fixture(scope="module")
def brain(template_100):
    return template_100.data > align.tissue_threshold(template_100)


@pytest.mark.parametrize(
    ("rotation", "shift"),
    [
        ((15, -10, 20), (0.8, -0.5, 0.6)),
        ((-20, 12, -8), (-1.0, 0.7, 0.3)),
        ((20, 20, -20), (1, 1, 1)),
    ],
)
def test_rigid_recovers_known_transform(template_100, brain, rotation, shift):
    sim = phantom.simulate_brain(
        template_100, rotation, shift, deformation_mm=0, noise=0.03, missing_anterior_mm=None
    )
    start = align.centre_on_atlas(align.AlignmentState(), sim.volume, template_100)
    events = []
    result = rigid.register(template_100, sim.volume, start, on_progress=events.append)
    err = phantom.error_mm(result, sim.truth.matrix(), template_100, brain)
    assert err < ERROR_TOL_MM
    np.testing.assert_allclose(result.params.matrix(), result.matrix, atol=1e-9)
    assert {e.level for e in events} == {0, 1, 2}
    assert len(result.trace) == len(events)
    assert "Step too small" in result.stop_reason or "Maximum number" in result.stop_reason


def _scaled(template: Volume, factor: float) -> tuple[Volume, np.ndarray]:
    """The template seen through a known scaling about its centre: returns (moving, truth)."""
    c = template.centre_mm
    truth = np.eye(4)  # moving -> atlas
    truth[:3, :3] = np.eye(3) / factor
    truth[:3, 3] = c - truth[:3, :3] @ c
    itk = frames.sitk_affine_transform(frames.world_matrix_to_lps(truth))  # moving grid -> atlas
    return align.resample(template, template, itk), truth


@pytest.mark.parametrize("kind", ["similarity", "affine"])
def test_similarity_and_affine_recover_ten_percent_scaling(template_100, brain, kind):
    moving, truth = _scaled(template_100, 1.1)
    start = align.centre_on_atlas(align.AlignmentState(), moving, template_100)
    result = rigid.register(template_100, moving, start, rigid.RigidSettings(transform=kind))
    err = phantom.error_mm(result, truth, template_100, brain)
    assert err < ERROR_TOL_MM
    scale = np.cbrt(abs(np.linalg.det(result.matrix[:3, :3])))
    assert scale == pytest.approx(1 / 1.1, abs=0.01)
    # the warped result is SimpleITK's resample through the result's own ITK transform
    warped = result.warp(template_100, moving)
    direct = sitk.GetArrayFromImage(
        sitk.Resample(
            to_sitk(moving, np.float64), to_sitk(template_100), result.transform, sitk.sitkLinear
        )
    )
    assert warped.data.dtype == moving.data.dtype and warped.shape == template_100.shape
    assert np.count_nonzero(warped.data) > 0.2 * warped.data.size
    assert np.abs(warped.data - direct).max() <= 0.5 + 1e-6  # rounded to the dtype at most


def test_the_status_line_states_the_scale_found(template_100):
    from napari_ccf_align.core.register.result import scale_note

    moving, _ = _scaled(template_100, 1.1)  # a brain 10 % larger than the atlas
    start = align.centre_on_atlas(align.AlignmentState(), moving, template_100)
    s = rigid.RigidSettings(transform="similarity", iterations=60)
    note = scale_note(rigid.register(template_100, moving, start, s).matrix)
    assert re.fullmatch(
        r"scale 0\.9\d\d: your brain is (9\.\d|10\.\d) % larger than the atlas", note
    )
    assert scale_note(np.eye(4)) == ""  # rigid: nothing to say


def test_a_seeded_single_threaded_run_replays_bit_identically(template_100):
    sim = phantom.simulate_brain(template_100)
    start = align.centre_on_atlas(align.AlignmentState(), sim.volume, template_100)
    one = rigid.RigidSettings(iterations=40, seed=7, threads=1)
    runs = [rigid.register(template_100, sim.volume, start, one) for _ in range(2)]
    assert np.array_equal(runs[0].matrix, runs[1].matrix)
    assert runs[0].final_metric == runs[1].final_metric
    assert sitk.ProcessObject.GetGlobalDefaultNumberOfThreads() > 1 or (os.cpu_count() or 1) == 1


def test_rigid_cannot_fit_scaling_but_similarity_can(template_100, brain):
    moving, truth = _scaled(template_100, 1.1)
    start = align.centre_on_atlas(align.AlignmentState(), moving, template_100)
    result = rigid.register(template_100, moving, start)
    assert phantom.error_mm(result, truth, template_100, brain) > 0.1


def test_cancel_during_level_two_stops_every_level(template_100):
    """Cancel is honoured at the next iteration of every remaining level.

    (How fast that is in seconds is measured in benchmarks/, not asserted here.)
    """
    sim = phantom.simulate_brain(template_100, (10, 0, 5), (0.2, 0, 0), deformation_mm=0)
    token = CancelToken()
    seen = []

    def on_progress(event):
        seen.append(event)
        if event.level == 1 and event.iteration >= 3:
            token.cancel()

    with pytest.raises(Cancelled, match="cancelled"):
        rigid.register(template_100, sim.volume, on_progress=on_progress, cancel=token)
    cancelled_at = next(i for i, e in enumerate(seen) if e.level == 1 and e.iteration >= 3)
    assert len(seen) - cancelled_at - 1 == 0  # no iteration reported after the cancel
    assert max(e.level for e in seen) == 1  # level 3 never iterated


def test_flipped_start_is_honoured(template_100, brain):
    # The moving volume is the atlas mirrored left-right: the flip in the start state undoes it.
    c = template_100.centre_mm
    mirror = np.diag([-1.0, 1, 1, 1])
    mirror[0, 3] = 2 * c[0]
    moving = align.resample(
        template_100, template_100, frames.sitk_affine_transform(frames.world_matrix_to_lps(mirror))
    )
    start = align.AlignmentState(frames.RigidParams(centre_mm=tuple(c), flip=(True, False, False)))
    result = rigid.register(template_100, moving, start)
    assert phantom.error_mm(result, mirror, template_100, brain) < ERROR_TOL_MM


def test_no_overlap_says_centre_on_atlas(template_100):
    far = template_100.transformed(frames.RigidParams(translation_mm=(40, 0, 0)).matrix())
    with pytest.raises(RegistrationError, match="centre it on the atlas"):
        rigid.register(template_100, far)


def test_constant_volume_and_empty_mask_are_refused(template_100):
    flat = template_100.with_data(np.zeros(template_100.shape, np.float32))
    with pytest.raises(EmptyVolumeError, match="no contrast"):
        rigid.register(template_100, flat)
    empty = template_100.with_data(np.zeros(template_100.shape, np.uint8))
    with pytest.raises(RegistrationError, match="mask is empty"):
        rigid.register(template_100, template_100, fixed_mask=empty)


def test_tiny_moving_mask_gives_too_few_samples(template_100):
    state = align.AlignmentState(crop=((0, 2), (0, 2), (0, 2)), crop_as_mask=True)
    with pytest.raises(RegistrationError, match="Too few samples"):
        rigid.register(template_100, template_100, state)


def test_unsupported_combinations_are_refused():
    with pytest.raises(SettingsError, match="sampling to 'none'"):
        rigid.RigidSettings(metric="ants_nc", sampling="random")
    with pytest.raises(SettingsError, match="Unknown transform"):
        rigid.RigidSettings(transform="bspline")
    s = rigid.RigidSettings(metric="ants_nc", sampling="none")
    assert rigid.RigidSettings.from_dict(s.to_dict()) == s


def test_two_d_volume_is_refused(template_100):
    flat = Volume.from_array(np.ones((5, 5)), 0.1, "RA")
    with pytest.raises(RegistrationError, match="3D"):
        rigid.register(template_100, flat)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"levels": ((4, 0.4),)}, None),  # pairs are accepted as levels
        ({"levels": ((0, 0.4),)}, "shrink factor"),
        ({"levels": (4, 2)}, "not \\(shrink, smoothing mm\\) pairs"),
        ({"levels": ()}, "not \\(shrink, smoothing mm\\) pairs"),
        ({"sampling": "sparse"}, "Unknown sampling"),
        ({"optimizer": "adam"}, "Unknown optimizer"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"learning_rate": float("nan")}, "learning rate"),
        ({"learning_rate": float("inf")}, "learning rate"),
        ({"learning_rate": "fast"}, "learning rate must be a number"),
        ({"min_step": -1.0}, "minimum step"),
        ({"clip_percentiles": (99.5, 0.5)}, "not in order"),
        ({"clip_percentiles": (-1, 99)}, "lower clip percentile"),
        ({"clip_percentiles": (1, 101)}, "upper clip percentile"),
        ({"clip_percentiles": 5}, "not a \\(low, high\\) pair"),
        ({"iterations": 0}, "iterations"),
        ({"iterations": 2.5}, "whole number"),
        ({"bins": 2}, "histogram bins"),
        ({"sampling_fraction": 0}, "sampling fraction"),
        ({"sampling_fraction": 1.5}, "sampling fraction"),
        ({"seed": -3}, "random seed"),
        ({"metric": None}, "Unknown metric"),
    ],
)
def test_settings_validate_every_field(changes, match):
    if match is None:
        assert rigid.RigidSettings(**changes).levels == (rigid.Level(4, 0.4),)
        return
    with pytest.raises(SettingsError, match=match):
        rigid.RigidSettings(**changes)


def test_settings_round_trip_and_unknown_keys():
    s = rigid.RigidSettings(transform="affine", levels=((2, 0.1), (1, 0)), learning_rate=0.3)
    assert rigid.RigidSettings.from_dict(s.to_dict()) == s
    with pytest.raises(SettingsError, match="Unknown engine setting"):
        rigid.RigidSettings.from_dict({**s.to_dict(), "learnig_rate": 1})


def test_affine_starts_from_a_rigid_result_and_rigid_refuses_a_scaled_start(template_100, brain):
    sim = phantom.simulate_brain(
        template_100,
        (12, -8, 10),
        (0.5, -0.3, 0.2),
        deformation_mm=0,
        noise=0.03,
        missing_anterior_mm=None,
    )
    start = align.centre_on_atlas(align.AlignmentState(), sim.volume, template_100)
    quick = rigid.RigidSettings(levels=((4, 0.4), (2, 0.2)), iterations=60)
    first = rigid.register(template_100, sim.volume, start, quick)
    # the chained run starts where the first ended: its first metric is the first's last
    second = rigid.register(
        template_100, sim.volume, start, rigid.RigidSettings(transform="affine"), start=first.matrix
    )
    err1 = phantom.error_mm(first, sim.truth.matrix(), template_100, brain)
    err2 = phantom.error_mm(second, sim.truth.matrix(), template_100, brain)
    assert err2 < max(err1, ERROR_TOL_MM)
    scaled = first.matrix.copy()
    scaled[:3, :3] *= 1.1
    with pytest.raises(SettingsError, match="scales or shears"):
        rigid.register(template_100, sim.volume, start, quick, start=scaled)


def test_an_atlas_finer_than_25_um_is_averaged_for_the_linear_stages():
    """The linear stages never hold a 10 µm atlas at 10 µm (38 GB in SimpleITK): it is
    averaged in whole blocks to at most 25 µm, a mask with it; coarser atlases are untouched."""
    from napari_ccf_align.core.volume import Volume

    data = np.random.default_rng(0).random((40, 30, 20)).astype(np.float32)
    fine = Volume.from_array(data, 0.01, "RAS")
    mask = fine.with_data((data > 0.5).astype(np.uint8))
    coarse, coarse_mask = rigid.linear_grid(fine, mask)
    np.testing.assert_allclose(coarse.spacing, [0.02] * 3)  # 2 x 2 x 2 blocks: <= 25 µm
    assert coarse.shape == (20, 15, 10) and coarse_mask.shape == coarse.shape
    np.testing.assert_allclose(coarse.data[0, 0, 0], data[:2, :2, :2].mean(), rtol=1e-6)
    # the blocks' centres sit where the fine voxels' centres average
    np.testing.assert_allclose(
        coarse.index_to_world(np.zeros((1, 3))), fine.index_to_world(np.full((1, 3), 0.5))
    )
    assert set(np.unique(coarse_mask.data)) <= {0, 1}
    at_25 = Volume.from_array(data, 0.025, "RAS")
    assert rigid.linear_grid(at_25)[0] is at_25
