"""Optional intensity preparation of the moving volume before an engine sees it.

Light-sheet and two-photon volumes carry a smooth bias (brighter near the objective, darker
deep in the tissue) and an intensity distribution unlike the atlas's; MRI another contrast.
Two optional steps, on the volume the engines register (already block-averaged to about the
atlas's spacing, so they cost seconds):

- :func:`bias_corrected`: SimpleITK's N4 bias-field correction over the tissue (Otsu mask);
- :func:`histogram_matched`: the volume's intensities mapped so their histogram matches the
  atlas's (SimpleITK's histogram matching, tissue only).

Both are off by default: measured on real templates of other brains, neither raised the mean
Dice of the major regions (``benchmarks/bench_real.py``, docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core.volume import Volume, from_sitk, to_sitk

#: N4's fitting iterations per level and its number of levels (SimpleITK's defaults are
#: 50 x 4; three levels of 20 converge on a working grid of a million voxels in seconds).
N4_ITERATIONS = (20, 20, 20)


def _tissue(image: sitk.Image) -> sitk.Image:
    return sitk.OtsuThreshold(image, 0, 1, 200)


def bias_corrected(volume: Volume) -> Volume:
    """``volume`` divided by N4's estimate of its smooth bias field (float32, same grid)."""
    image = to_sitk(volume, np.float32)
    shifted = image - float(np.min(sitk.GetArrayViewFromImage(image))) + 1.0  # N4 needs > 0
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(N4_ITERATIONS))
    corrected = n4.Execute(shifted, _tissue(shifted))
    return volume.with_data(from_sitk(corrected, volume.name).data.astype(np.float32))


def histogram_matched(volume: Volume, reference: Volume, levels: int = 256) -> Volume:
    """``volume``'s intensities remapped so that its tissue's histogram matches
    ``reference``'s (float32, same grid)."""
    matcher = sitk.HistogramMatchingImageFilter()
    matcher.SetNumberOfHistogramLevels(levels)
    matcher.SetNumberOfMatchPoints(15)
    matcher.ThresholdAtMeanIntensityOn()  # leave the background out of both histograms
    out = matcher.Execute(to_sitk(volume, np.float32), to_sitk(reference, np.float32))
    return volume.with_data(from_sitk(out, volume.name).data.astype(np.float32))
