"""Errors raised on bad input or failed work.

Every error carries one sentence that says what is wrong and what to do, so
widgets and the command line can show ``str(error)`` as it is.
"""

from __future__ import annotations


class CcfAlignError(Exception):
    """Base class of every error this package raises on purpose."""


class DimensionError(CcfAlignError, ValueError):
    """An array has the wrong number of dimensions."""


class VoxelSizeError(CcfAlignError, ValueError):
    """A voxel size is zero, negative, not finite or of the wrong length."""


class MissingVoxelSizeError(VoxelSizeError):
    """A file carries no voxel size and none was given."""


class OrientationError(CcfAlignError, ValueError):
    """An orientation code is unknown, inconsistent or missing."""


class EmptyVolumeError(CcfAlignError, ValueError):
    """A volume holds no usable values (all NaN, or all zero where tissue is needed)."""


class AffineError(CcfAlignError, ValueError):
    """An index-to-world affine is singular, sheared or not finite."""


class CropError(CcfAlignError, ValueError):
    """A crop box is empty or lies outside the volume."""


class MissingFileError(CcfAlignError, FileNotFoundError):
    """A file that was asked for does not exist."""


class UnreadableFileError(CcfAlignError, OSError):
    """A file exists but cannot be read: unknown format, corrupt or truncated."""


class WriteError(CcfAlignError, OSError):
    """A file could not be written (folder not writable, disk full)."""


class OutputError(CcfAlignError, ValueError):
    """An output would replace an input, a session's own file, or (unasked) an existing file."""


class Cancelled(CcfAlignError):
    """Work was cancelled by the user; nothing half-made was kept."""


class NetworkError(CcfAlignError, ConnectionError):
    """A download could not reach its server."""


class ChecksumError(CcfAlignError, ValueError):
    """A downloaded or cached file is not the file that was expected."""


class AtlasError(CcfAlignError, ValueError):
    """An atlas request cannot be met (e.g. an unsupported resolution)."""


class RegistrationError(CcfAlignError, RuntimeError):
    """A registration could not run or did not converge to a usable result."""


class SettingsError(CcfAlignError, ValueError):
    """An engine or form setting is of the wrong type or out of its range."""


class InputError(CcfAlignError, TypeError):
    """A public function was given an argument of the wrong kind (e.g. a list for a Volume)."""


class UnknownRegionError(AtlasError, KeyError):
    """A region id or acronym is not in the Allen structure ontology."""

    def __str__(self) -> str:  # KeyError would quote the sentence
        return str(self.args[0]) if self.args else ""


def internal_error_sentence(exc: BaseException, report_with: str) -> str:
    """The one line a bug of ours gets (anything not a :class:`CcfAlignError`): that it is
    internal, what it was, and what to report it with (``report_with``)."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return (
        f"internal error: {type(exc).__name__}: {first} (a bug in napari-ccf-align, not in your "
        f"input): please report it, {report_with}."
    )
