"""The reference pipeline this project started from, rebuilt from its description, as a baseline.

Moving resampled onto the atlas grid; both images ``Normalize``d; Mattes MI with
50 bins; REGULAR sampling of 25 % of voxels; regular-step gradient descent
(learning rate 0.5, minimum step 1e-4, up to 1000 iterations, relaxation 0.5,
gradient tolerance 1e-8) with scales from physical shift; four levels, shrink
factors 8, 4, 2, 1 and smoothing sigmas 4, 2, 1, 0 in physical units; Euler3D
start centred on the atlas centre with a translation that puts the moving tissue
centroid there.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import align, frames
from napari_ccf_align.core.volume import Volume, to_sitk


def baseline_register(fixed: Volume, moving: Volume) -> np.ndarray:
    """Run the reference pipeline; return the moving -> atlas RAS world matrix."""
    fixed_img = sitk.Normalize(to_sitk(fixed, np.float32))
    on_grid = sitk.Resample(
        to_sitk(moving, np.float32), fixed_img, sitk.Transform(), sitk.sitkLinear, 0.0
    )
    moving_img = sitk.Normalize(on_grid)
    moving_on_grid = Volume(sitk.GetArrayFromImage(on_grid), fixed.affine)
    centre = fixed.centre_mm
    centroid = align.centre_of(moving_on_grid, "tissue")
    init = sitk.Euler3DTransform()
    init.SetCenter(tuple(frames.ras_to_lps(centre)))
    init.SetTranslation(tuple(frames.ras_to_lps(centroid) - frames.ras_to_lps(centre)))
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    reg.SetMetricSamplingStrategy(reg.REGULAR)
    reg.SetMetricSamplingPercentage(0.25)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=0.5,
        minStep=1e-4,
        numberOfIterations=1000,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([8, 4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([4, 2, 1, 0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=True)
    reg.Execute(fixed_img, moving_img)
    fixed_to_moving = frames.sitk_transform_matrix(init)
    return np.linalg.inv(frames.world_matrix_to_lps(fixed_to_moving))
