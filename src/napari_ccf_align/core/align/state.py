"""The initial alignment as one small serialisable state, and its crop box.

:class:`AlignmentState` is the whole of it: the rigid parameters, the crop box
and whether the crop cuts or only masks the metric. The Align widget, the
engines and the saved session all read this one object; nothing keeps a copy.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import CropError, SettingsError
from napari_ccf_align.core.volume import (
    Volume,
)

COARSE_MAX_VOXELS = 1_000_000

CentreMode = Literal["volume", "tissue"]


@dataclass(frozen=True)
class AlignmentState:
    """Everything the user set by hand before registration.

    Parameters
    ----------
    rigid : RigidParams
        Rotation (degrees about R, A, S), shift (mm) and flips of the moving volume.
    crop : tuple of (int, int) or None
        ``(start, stop)`` voxel range per array axis of the moving volume; None = all.
    crop_as_mask : bool
        Use the crop box as a metric mask instead of cutting the volume.
    """

    rigid: frames.RigidParams = field(default_factory=frames.RigidParams)
    crop: tuple[tuple[int, int], ...] | None = None
    crop_as_mask: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.rigid, frames.RigidParams):
            raise SettingsError(
                f"The alignment's rigid part is a {type(self.rigid).__name__}: give a RigidParams."
            )
        if self.crop is not None:
            object.__setattr__(self, "crop", _crop_ranges(self.crop))
        object.__setattr__(self, "crop_as_mask", bool(self.crop_as_mask))

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "rigid": self.rigid.to_dict(),
            "crop": None if self.crop is None else [list(r) for r in self.crop],
            "crop_as_mask": self.crop_as_mask,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AlignmentState:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        SettingsError, AffineError, CropError
            If a key is missing or unknown or a value is of the wrong kind.
        """
        if not isinstance(data, dict) or "rigid" not in data:
            raise SettingsError(
                "This is not a saved alignment (no 'rigid' entry): choose a file the Align "
                "widget or a session wrote."
            )
        unknown = sorted(set(data) - {"rigid", "crop", "crop_as_mask"})
        if unknown:
            raise SettingsError(
                f"Unknown alignment entr(ies) {', '.join(unknown)}: remove them, or choose a file "
                "the Align widget or a session wrote."
            )
        return cls(
            frames.RigidParams.from_dict(data["rigid"]),
            data.get("crop"),
            data.get("crop_as_mask", False),
        )

    def to_json(self) -> str:
        """The state as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlignmentState:
        """Inverse of :meth:`to_json` (bad JSON raises :class:`SettingsError`)."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise SettingsError(
                f"The saved alignment is not valid JSON ({exc}): choose the file again or reset."
            ) from None
        return cls.from_dict(data)

    def with_rigid(self, **changes) -> AlignmentState:
        """A new state with some rigid fields replaced."""
        return replace(self, rigid=replace(self.rigid, **changes))


def _crop_ranges(crop: object) -> tuple[tuple[int, int], ...]:
    """``((start, stop), ...)`` of whole numbers, or a :class:`CropError`."""
    try:
        ranges = tuple((a, b) for a, b in crop)
        ok = all(
            isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())
            for r in ranges
            for v in r
        )
    except (TypeError, ValueError):
        ranges, ok = (), False
    if not ranges or not ok:
        raise CropError(
            f"The crop {crop!r} is not one (start, stop) pair of whole voxel numbers per axis: "
            "give e.g. ((0, 100), (10, 90), (0, 80))."
        )
    return tuple((int(a), int(b)) for a, b in ranges)


# --------------------------------------------------------------------------- crop


def check_crop(volume: Volume, crop: Sequence[tuple[int, int]] | None) -> None:
    """Raise :class:`CropError` if ``crop`` is empty or outside ``volume``."""
    if crop is not None:
        volume.cropped(crop)


def crop_between(
    crop: Sequence[tuple[int, int]] | None, source: Volume, target: Volume
) -> tuple[tuple[int, int], ...] | None:
    """The same crop box on another layout of the same voxels (e.g. the file's, napari's).

    ``source`` and ``target`` hold the same grid with axes permuted or reversed;
    the box's corners are carried through their affines.

    Examples
    --------
    >>> import numpy as np
    >>> a = Volume.from_array(np.zeros((4, 6, 8)), 0.1, "PIR")
    >>> crop_between(((1, 3), (0, 6), (2, 5)), a, a.reoriented("RAS"))
    ((2, 5), (1, 3), (0, 6))
    """
    if crop is None:
        return None
    check_crop(source, crop)
    lo = np.array([a for a, _ in crop], float)
    hi = np.array([b - 1 for _, b in crop], float)
    to_target = np.linalg.inv(target.affine) @ source.affine
    corners = np.rint(frames.apply_affine(to_target, np.stack([lo, hi]))).astype(int)
    start, stop = corners.min(axis=0), corners.max(axis=0) + 1
    return tuple((int(a), int(b)) for a, b in zip(start, stop, strict=True))


def crop_mask(volume: Volume, crop: Sequence[tuple[int, int]]) -> Volume:
    """A uint8 mask on the volume's grid: 1 inside the crop box."""
    check_crop(volume, crop)
    mask = np.zeros(volume.shape, np.uint8)
    mask[tuple(slice(a, b) for a, b in crop)] = 1
    return volume.with_data(mask, name=f"{volume.name} crop mask")


def crop_box_corners(volume: Volume, crop: Sequence[tuple[int, int]] | None) -> np.ndarray:
    """World (RAS mm) corners of the crop box's outer voxel faces, ``(8, 3)``."""
    crop = crop or tuple((0, s) for s in volume.shape)
    idx = np.array(list(itertools.product(*[(a - 0.5, b - 0.5) for a, b in crop])), dtype=float)
    return volume.index_to_world(idx)


def cropped_moving(volume: Volume, state: AlignmentState) -> Volume:
    """The moving volume as the engines see it: cut to the crop box unless it only masks."""
    if state.crop is None or state.crop_as_mask:
        return volume
    return volume.cropped(state.crop)
