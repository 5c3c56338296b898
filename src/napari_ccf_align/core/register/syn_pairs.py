"""DIPY SyN's independent halves two at a time, on DIPY's own kernels.

SyN is symmetric: each iteration DIPY warps the atlas's image and the sample's, computes the
cross-correlation step that moves the sample towards the atlas and the one that moves the atlas
towards the sample, then inverts the static model's field and the moving model's (twice each). The halves of each pair
never read each other's results, and DIPY's kernels (Cython, and SciPy's Gaussian filter)
release the GIL, so while DIPY computes one half a second thread computes the other with the
same kernel and arguments, and DIPY's next call gets that answer. Inversion is 37 % of a
SyN run at 100 µm and smoothing the steps 20 % (``docs/benchmarks.md``); the results are the
kernels' own, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

_pairing = True  # off within :func:`one_at_a_time`


@contextmanager
def one_at_a_time() -> Iterator[None]:
    """Within it, SyN computes each pair's halves one after the other, as DIPY alone does
    (to measure what pairing gains, or to check that it changes nothing)."""
    global _pairing
    before, _pairing = _pairing, False
    try:
        yield
    finally:
        _pairing = before


def install(sdr, cc: bool) -> list:
    """Pair the halves of ``sdr``'s iterations, once DIPY has connected its kernels (its
    ``OPT_START`` callback): the inversions, the two warps, and the two steps when the
    metric is ``cc``. Returns the pairings, each to ``close()`` after the run (none within
    :func:`one_at_a_time`)."""
    if not _pairing:
        return []
    inversion = PairedInversion(sdr, sdr.invert_vector_field)
    sdr.invert_vector_field = inversion
    pairs: list = [inversion]
    if cc:
        pairs.append(PairedSteps(sdr.metric).install())
    pairs.append(PairedWarps(sdr).install())
    return pairs


class PairedInversion:
    """Stands in for ``sdr.invert_vector_field`` on a DIPY
    ``SymmetricDiffeomorphicRegistration`` (set it once DIPY has connected its own).

    Parameters
    ----------
    sdr : dipy.align.imwarp.SymmetricDiffeomorphicRegistration
        The registration whose ``static_to_ref`` and ``moving_to_ref`` models are inverted.
    invert : callable
        DIPY's inversion kernel, ``invert(field, world2grid, spacing, iterations,
        tolerance, start=None)``.
    """

    def __init__(self, sdr, invert: Callable) -> None:
        self.sdr = sdr
        self.invert = invert
        self.paired = 0  # calls answered by the second thread
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="syn-inversion")
        self._pending: tuple[tuple, Future] | None = None

    def __call__(self, field, world2grid, spacing, iterations, tolerance, start=None):
        pending, self._pending = self._pending, None
        if pending is not None:
            asked, future = pending
            answer = future.result()
            if _same(asked, (field, world2grid, spacing, iterations, tolerance, start)):
                self.paired += 1
                return answer
        partner = self._partner(field)
        if partner is not None:
            asked = (*partner[:1], world2grid, spacing, iterations, tolerance, partner[1])
            future = self._pool.submit(
                self.invert, partner[0], world2grid, spacing, iterations, tolerance,
                start=partner[1],
            )  # fmt: skip
            self._pending = (asked, future)
        return self.invert(field, world2grid, spacing, iterations, tolerance, start=start)

    def _partner(self, field) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``(field, start)`` of the other model's inversion DIPY asks for next."""
        s, m = self.sdr.static_to_ref, self.sdr.moving_to_ref
        if s is None or m is None:
            return None
        if field is s.forward:
            return m.forward, m.backward
        if field is s.backward:
            return m.backward, m.forward
        return None

    def close(self) -> None:
        """Wait for a last inversion nobody asked for, and stop the thread."""
        self._pending = None
        self._pool.shutdown(wait=True)


class PairedSteps:
    """Computes a DIPY ``CCMetric``'s backward step on a second thread while DIPY computes
    its forward step (both read the same per-iteration factors; neither changes them).

    Installed on the metric instance by :meth:`install`; ``initialize_iteration`` drops
    any step computed for an earlier iteration.
    """

    def __init__(self, metric) -> None:
        self.metric = metric
        self.paired = 0
        self._forward = metric.compute_forward
        self._backward = metric.compute_backward
        self._initialize = metric.initialize_iteration
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="syn-step")
        self._pending: Future | None = None

    def install(self) -> PairedSteps:
        """Stand in for the metric's three methods (on this instance only)."""
        self.metric.initialize_iteration = self.initialize_iteration
        self.metric.compute_forward = self.compute_forward
        self.metric.compute_backward = self.compute_backward
        return self

    def initialize_iteration(self):
        self._drop()
        return self._initialize()

    def compute_forward(self):
        self._drop()
        self._pending = self._pool.submit(self._backward)
        return self._forward()

    def compute_backward(self):
        pending, self._pending = self._pending, None
        if pending is None:
            return self._backward()
        self.paired += 1
        return pending.result()

    def _drop(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # never two steps at once on the metric's arrays

    def close(self) -> None:
        """Wait for a step nobody asked for, and stop the thread."""
        self._drop()
        self._pool.shutdown(wait=True)


class PairedWarps:
    """Warps the sample's image through the moving model on a second thread while DIPY warps
    the atlas's image through the static model (each iteration starts with both, onto the
    same grid: the second is asked for right after the first).

    :meth:`install` stands in for the two models' ``transform_inverse``; :meth:`close`
    gives them back (the static model is the mapping DIPY returns).
    """

    def __init__(self, sdr) -> None:
        self.sdr = sdr
        self.paired = 0
        self.static_map, self.moving_map = sdr.static_to_ref, sdr.moving_to_ref
        self._static = self.static_map.transform_inverse
        self._moving = self.moving_map.transform_inverse
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="syn-warp")
        self._pending: tuple[tuple, Future] | None = None

    def install(self) -> PairedWarps:
        """Stand in for both models' ``transform_inverse`` (on these instances only)."""
        self.static_map.transform_inverse = self.static_first
        self.moving_map.transform_inverse = self.moving_second
        return self

    def static_first(self, image, *args, **kwargs):
        self._drop()
        moving = self.sdr.moving_ss.get_image(self.sdr.current_level)
        future = self._pool.submit(self._moving, moving, *args, **kwargs)
        self._pending = ((moving, args, kwargs), future)
        return self._static(image, *args, **kwargs)

    def moving_second(self, image, *args, **kwargs):
        pending, self._pending = self._pending, None
        if pending is not None:
            (moving, asked_args, asked_kwargs), future = pending
            answer = future.result()
            if (
                moving is image
                and _same(asked_args, args)
                and asked_kwargs.keys() == kwargs.keys()
                and _same(tuple(asked_kwargs.values()), tuple(kwargs.values()))
            ):
                self.paired += 1
                return answer
        return self._moving(image, *args, **kwargs)

    def _drop(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].result()

    def close(self) -> None:
        """Give the models their own methods back, and stop the thread."""
        self._drop()
        for model in (self.static_map, self.moving_map):
            model.__dict__.pop("transform_inverse", None)
        self._pool.shutdown(wait=True)


def _same(a: tuple, b: tuple) -> bool:
    """The same call: the same arrays (by identity) and values."""
    if len(a) != len(b):
        return False
    return all(
        (x is y) if isinstance(x, np.ndarray) or x is None else _equal(x, y)
        for x, y in zip(a, b, strict=True)
    )


def _equal(x, y) -> bool:
    try:
        return bool(np.array_equal(x, y))
    except (TypeError, ValueError):
        return x == y
