"""Per-value label work (no sort of the voxels) agrees with numpy's sorting unique."""

import numpy as np
import pytest

from napari_ccf_align.core import label_values


@pytest.mark.parametrize("high", [50, 614_454_277])  # a value table, and binary search
def test_relabel_and_counts_agree_with_sorting_unique(high):
    rng = np.random.default_rng(3)
    values = np.unique(rng.integers(0, high, 40)).astype(np.uint32)
    labels = rng.choice(values, size=(17, 9, 11)).astype(np.uint32)

    mapping = lambda v: (v * 7 + 1) % 1000  # noqa: E731
    out = label_values.relabel(labels, mapping, np.int64)
    expected = np.vectorize(mapping)(labels.astype(np.int64))
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int64 and out.shape == labels.shape

    got_values, got_counts = label_values.value_counts(labels)
    want_values, want_counts = np.unique(labels, return_counts=True)
    np.testing.assert_array_equal(got_values, want_values)
    np.testing.assert_array_equal(got_counts, want_counts)


def test_empty_labels_count_nothing():
    values, counts = label_values.value_counts(np.zeros(0, np.uint32))
    assert values.size == 0 and counts.size == 0
