"""ANTsPy (``pip install antspyx``, the ``benchmarks`` extra) as a peer: the same volumes
through ``ants.registration`` and back into this package's Volumes, for the same figures.

ANTs and ITK share the LPS physical space, so an image goes across as its SimpleITK form
(array transposed to ITK's x, y, z index order, with origin, spacing and direction).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core.volume import Volume, from_sitk, to_sitk


def available() -> bool:
    try:
        import ants  # noqa: F401
    except ImportError:
        return False
    return True


def to_ants(volume: Volume, dtype=np.float32):
    import ants

    image = to_sitk(volume, dtype)
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    return ants.from_numpy(
        np.ascontiguousarray(array),
        origin=image.GetOrigin(),
        spacing=image.GetSpacing(),
        direction=direction,
    )


def on_grid(ants_image, grid: Volume, name: str) -> Volume:
    """An ANTs image on the grid of ``grid`` back as a Volume laid out as ``grid`` is."""
    reference = to_sitk(grid)
    image = sitk.GetImageFromArray(np.ascontiguousarray(ants_image.numpy().transpose(2, 1, 0)))
    image.CopyInformation(reference)
    back = from_sitk(image, name)
    assert back.shape == grid.shape and np.allclose(back.affine, grid.affine)
    return back


def register(fixed: Volume, moving: Volume, kind: str, labels: Volume | None = None):
    """``(warped moving on fixed's grid, warped labels or None, seconds, CPU seconds)`` by
    ANTs ``kind`` (``"Rigid"``, ``"Affine"``, ``"SyN"``, ``"SyNRA"``: ANTsPy's own recipes;
    ANTs' threads run in this process, so its CPU time is all of theirs)."""
    import time

    import ants

    f, m = to_ants(fixed), to_ants(moving)
    t0, c0 = time.perf_counter(), time.process_time()
    out = ants.registration(fixed=f, moving=m, type_of_transform=kind, random_seed=1)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    warped = on_grid(out["warpedmovout"], fixed, f"{moving.name} (ANTs {kind})")
    warped_labels = None
    if labels is not None:
        # ANTs resamples in float32, which holds Allen ids (up to ~6e8) inexactly: send the
        # ids' ranks (a few hundred) and map them back
        ids, ranks = np.unique(np.asarray(labels.data), return_inverse=True)
        ranked = labels.with_data(ranks.reshape(labels.shape).astype(np.float32))
        moved = ants.apply_transforms(
            fixed=f,
            moving=to_ants(ranked, np.float32),
            transformlist=out["fwdtransforms"],
            interpolator="nearestNeighbor",
        )
        back = on_grid(moved, fixed, "labels")
        warped_labels = back.with_data(ids[np.rint(back.data).astype(np.int64)].astype(np.uint32))
    return warped, warped_labels, seconds, cpu
