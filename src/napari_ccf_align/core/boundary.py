"""The package's boundary: public core functions raise only :class:`CcfAlignError` subclasses.

Each core module validates what it can name (a voxel size, a code, a crop) with a
sentence of its own. What slips past, an argument of the wrong kind that numpy or
SimpleITK trips over deep inside, would reach the user as a bare ``TypeError``;
:func:`guard_public_functions` wraps every public function of a module so that it
arrives as an :class:`~.errors.InputError` naming the function, with the original
error kept as its cause.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import TypeVar

from .errors import CcfAlignError, InputError

F = TypeVar("F", bound=Callable)

#: Errors that mean "this argument cannot be used here".
_ARGUMENT_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError, ZeroDivisionError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:160]


def public(func: F) -> F:
    """Wrap ``func`` so that an argument it cannot use raises :class:`InputError`.

    The wrapper lives in ``func``'s own module (its globals are the module's), so
    tools that look for a module's functions there, such as doctest, still find it.
    """
    where = f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}"
    passed, converted, argument_errors, first_line = (
        CcfAlignError,
        InputError,
        _ARGUMENT_ERRORS,
        _first_line,
    )

    def guarded(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except passed:
            raise
        except argument_errors as exc:
            raise converted(
                f"{where} cannot use the arguments it was given ({type(exc).__name__}: "
                f"{first_line(exc)}): check them against its documentation."
            ) from exc

    wrapper = types.FunctionType(
        guarded.__code__, func.__globals__, func.__name__, None, guarded.__closure__
    )
    functools.update_wrapper(wrapper, func)
    wrapper.__ccf_align_public__ = True
    return wrapper  # type: ignore[return-value]


def guard_public_functions(namespace: dict) -> None:
    """Wrap every public function defined in the module whose globals are ``namespace``.

    Generator functions are left as they are: napari's thread workers recognise them
    by their type, and they check their arguments through the functions they call.
    """
    module = namespace["__name__"]
    for name, value in list(namespace.items()):
        if (
            not name.startswith("_")
            and inspect.isfunction(value)
            and value.__module__ == module
            and not inspect.isgeneratorfunction(value)  # callers (thread workers) tell by this
            and not getattr(value, "__ccf_align_public__", False)
        ):
            namespace[name] = public(value)
