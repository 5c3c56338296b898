"""Validation of settings and arguments at the package's boundary, one sentence per failure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

from napari_ccf_align.core.errors import SettingsError


def number(
    value: object,
    name: str,
    lo: float = -math.inf,
    hi: float = math.inf,
    *,
    integer: bool = False,
    lo_open: bool = False,
    example: str = "",
) -> float:
    """``value`` as a finite float (or int) within ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``).

    Raises
    ------
    SettingsError
        Naming the setting, the value given and the range.

    Examples
    --------
    >>> number(0.5, "learning rate", 0, lo_open=True)
    0.5
    >>> number("fast", "learning rate", 0, lo_open=True)
    Traceback (most recent call last):
    ...
    napari_ccf_align.core.errors.SettingsError: The learning rate must be a number, not 'fast': give e.g. a value above 0.
    """
    kind = "whole number" if integer else "number"
    bound = (
        f"above {lo:g}"
        if lo_open and hi == math.inf
        else f"of at least {lo:g}"
        if hi == math.inf
        else f"from {lo:g} to {hi:g}"
    )
    hint = example or f"a value {bound}"
    if isinstance(value, bool) or not isinstance(value, Real):
        raise SettingsError(f"The {name} must be a {kind}, not {value!r}: give e.g. {hint}.")
    v = float(value)
    if not math.isfinite(v):
        raise SettingsError(f"The {name} is {value!r}: give a finite {kind}, {bound}.")
    if integer and v != int(v):
        raise SettingsError(f"The {name} must be a whole number, not {value!r}: give e.g. {hint}.")
    if v < lo or v > hi or (lo_open and v == lo):
        raise SettingsError(f"The {name} is {value!r}, out of range: give a {kind} {bound}.")
    return int(v) if integer else v


def known_keys(data: object, fields: Sequence[str], what: str) -> dict:
    """``data`` as a dict whose keys are all in ``fields``, or a :class:`SettingsError`.

    For ``from_dict`` of saved settings: a misspelt key is named, not ignored.
    """
    if not isinstance(data, dict):
        raise SettingsError(f"{what} must be a mapping, not {type(data).__name__}.")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SettingsError(
            f"Unknown {what.lower()} key(s) {', '.join(unknown)}: remove them or check the "
            "spelling."
        )
    return data


def choice(value: object, name: str, options: Sequence[str]) -> str:
    """``value`` if it is one of ``options``, else a :class:`SettingsError` listing them."""
    if not isinstance(value, str) or value not in options:
        raise SettingsError(
            f"Unknown {name} {value!r}: choose {', '.join(options[:-1])} or {options[-1]}."
        )
    return value
