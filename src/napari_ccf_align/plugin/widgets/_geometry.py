"""The one geometry form: voxel size per file axis (µm), orientation code and its style.

Used by the Load and Align widgets alike, so a volume is described the same way in
both and never squeezed into one isotropic size.
"""

from __future__ import annotations

from collections.abc import Sequence

from magicgui.widgets import ComboBox, Container, FloatSpinBox, LineEdit

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import OrientationError


class GeometryForm(Container):
    """Voxel size of each array axis (µm), orientation code and code style."""

    def __init__(self, axes: int = 3) -> None:
        self.voxel = [
            FloatSpinBox(label=f"voxel size, axis {k} (µm)", min=0.0, max=1e6, step=0.1, value=0.0)
            for k in range(axes)
        ]
        for box in self.voxel:
            box.native.setDecimals(3)
        self.code_edit = LineEdit(label="orientation code", value="")
        self.code_edit.native.setPlaceholderText("e.g. PIR (nibabel) or asl (BrainGlobe)")
        self.style_box = ComboBox(
            label="code style",
            choices=[
                ("nibabel (axis k points to letter k)", "nibabel"),
                ("BrainGlobe (letters = origin corner)", "brainglobe"),
            ],
            value="nibabel",
        )
        super().__init__(widgets=[*self.voxel, self.code_edit, self.style_box])

    def set(self, size_um: Sequence[float] | None, code: str | None) -> None:
        """Show a voxel size (µm, per axis; None = unknown) and a nibabel code (None = empty)."""
        values = list(size_um) if size_um is not None else []
        for k, box in enumerate(self.voxel):
            box.visible = k < max(len(values), 2) if values else True
            box.value = float(values[k]) if k < len(values) else 0.0
        self.code_edit.value = code or ""
        self.style_box.value = "nibabel"

    def size_um(self, ndim: int) -> tuple[float, ...]:
        """The voxel sizes of the first ``ndim`` axes, in µm (0 = not given)."""
        return tuple(round(float(b.value), 6) for b in self.voxel[:ndim])

    def code(self) -> str | None:
        """The code as typed (None when empty)."""
        return self.code_edit.value.strip() or None

    def checked(self, ndim: int) -> tuple[tuple[float, ...], str]:
        """``(voxel size µm, nibabel code)``, or a CcfAlignError saying what to fix.

        Raises
        ------
        OrientationError
            No code, an unknown one, or letter case that suggests the other style.
        VoxelSizeError
            A size that is zero, negative or outside 1 nm to 1 m.
        """
        code = self.code()
        if code is None:
            raise OrientationError(
                "No orientation code is given: type one letter per axis (e.g. PIR, or asl in "
                "BrainGlobe style); it is never guessed."
            )
        frames.check_style(code, self.style_box.value)
        nibabel = frames.parse_orientation(code, self.style_box.value, ndim)
        size = frames.check_voxel_size(self.size_um(ndim), ndim, "µm")
        return tuple(float(s) for s in size), nibabel
