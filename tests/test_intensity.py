"""Optional intensity preparation: N4 bias correction and histogram matching, on constructed
volumes whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core.register import intensity, prepare
from napari_ccf_align.core.volume import Volume


def _ball(shape=(40, 40, 40)) -> tuple[np.ndarray, np.ndarray]:
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]] - 19.5
    inside = x**2 + y**2 + z**2 < 16**2
    rings = 1000.0 + 300.0 * np.sin(np.sqrt(x**2 + y**2 + z**2) / 2.0)  # tissue structure
    return np.where(inside, rings, 20.0).astype(np.float32), inside


def test_n4_takes_out_a_smooth_bias_field():
    truth, inside = _ball()
    ramp = np.linspace(0.5, 1.5, truth.shape[2], dtype=np.float32)  # brighter to one side
    biased = Volume.from_array(truth * ramp, 0.1, "RAS", name="biased")
    corrected = intensity.bias_corrected(biased).data

    def spread(image):  # how far the tissue's left and right halves differ
        left, right = image[:, :, :20][inside[:, :, :20]], image[:, :, 20:][inside[:, :, 20:]]
        return abs(np.median(right) / np.median(left) - 1.0)

    assert spread(biased.data) > 0.3
    assert spread(corrected) < 0.5 * spread(biased.data)  # at least half the bias is gone


def test_histogram_matching_gives_the_atlas_intensities():
    truth, inside = _ball()
    atlas = Volume.from_array(truth, 0.1, "RAS", name="atlas")
    dim = Volume.from_array(np.sqrt(truth) * 3.0, 0.1, "RAS", name="other contrast")
    matched = intensity.histogram_matched(dim, atlas).data
    for q in (25, 50, 75):
        assert np.percentile(matched[inside], q) == pytest.approx(
            np.percentile(truth[inside], q), rel=0.05
        )


def test_prepare_applies_them_only_when_asked():
    truth, _ = _ball()
    atlas = Volume.from_array(truth, 0.1, "RAS", name="atlas")
    ramp = np.linspace(0.5, 1.5, truth.shape[2], dtype=np.float32)
    sample = Volume.from_array(truth * ramp, 0.1, "RAS", name="sample")
    plain = prepare.prepare(atlas, sample).moving.data
    with_n4 = prepare.prepare(atlas, sample, bias_correction=True).moving.data
    assert not np.allclose(plain, with_n4)
    np.testing.assert_array_equal(plain, prepare.prepare(atlas, sample).moving.data)
