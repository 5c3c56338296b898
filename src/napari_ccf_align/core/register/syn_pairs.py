"""DIPY SyN's independent halves two at a time, on the kernels the run uses.

SyN is symmetric: each iteration DIPY warps the atlas's image and the sample's, computes the
cross-correlation step that moves the sample towards the atlas and the one that moves the atlas
towards the sample, adds each to its model's field, then inverts the static model's field and
the moving model's (twice each). The halves of each pair never read each other's results, and
the kernels (DIPY's Cython, SciPy's Gaussian filter, :mod:`.syn_kernels`' numba) release the
GIL, so while DIPY computes one half a second thread computes the other with the same kernel
and arguments, and DIPY's next call gets that answer. Inversion is 37 % of a SyN run at
100 µm and smoothing the steps 20 % (``docs/benchmarks.md``); the results are the kernels'
own, bit for bit.
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
    ``OPT_START`` callback): the inversions, the two warps, and the two steps and the two
    field updates when the metric is ``cc``. Returns the pairings, each to ``close()`` after
    the run (none within :func:`one_at_a_time`)."""
    if not _pairing:
        return []
    inversion = PairedInversion(sdr, sdr.invert_vector_field)
    sdr.invert_vector_field = inversion
    pairs: list = [inversion]
    if cc:
        steps = PairedSteps(sdr.metric).install()
        pairs += [steps, PairedUpdates(sdr, steps).install()]
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

    def backward_ahead(self) -> np.ndarray | None:
        """The backward step being computed for this iteration (waiting for it), which
        :meth:`compute_backward` will still return; None when none is under way."""
        return None if self._pending is None else self._pending.result()

    def _drop(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()  # never two steps at once on the metric's arrays

    def close(self) -> None:
        """Wait for a step nobody asked for, and stop the thread."""
        self._drop()
        self._pool.shutdown(wait=True)


class PairedUpdates:
    """Adds the backward step to the moving model's field on a second thread while DIPY adds
    the forward step to the static model's (DIPY's ``update``: a composition, then the
    field's mean norm).

    When DIPY asks for the static update, the backward step is already under way
    (:class:`PairedSteps`); this prepares it as DIPY's iteration will (no displacement on
    the grid's faces, the largest step one voxel) and composes it into a new array. DIPY's
    own call for the moving update then gets that answer, copied into the model's field in
    place as DIPY's kernel would have written it, if the call is the one foreseen.
    """

    def __init__(self, sdr, steps: PairedSteps) -> None:
        self.sdr = sdr
        self.steps = steps
        self.paired = 0
        self._update = sdr.update
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="syn-update")
        self._pending: tuple[tuple, Future] | None = None

    def install(self) -> PairedUpdates:
        """Stand in for ``sdr.update`` (on this instance only)."""
        self.sdr.update = self.update
        return self

    def update(self, current, new, world2grid, time_scaling):
        pending, self._pending = self._pending, None
        if pending is not None:
            (field, asked_w2g, asked_t), future = pending
            step, out, mean_norm = future.result()
            if (
                current is field
                and time_scaling == asked_t
                and np.array_equal(world2grid, asked_w2g)
                and np.array_equal(new, step)
            ):
                self.paired += 1
                current[...] = out
                return np.array(current), np.array(mean_norm)
        moving = self.sdr.moving_to_ref
        if moving is not None and current is self.sdr.static_to_ref.forward:
            raw = self.steps.backward_ahead()
            if raw is not None:
                field = moving.forward
                future = self._pool.submit(self._composed, field, raw, world2grid, time_scaling)
                self._pending = ((field, world2grid, time_scaling), future)
        return self._update(current, new, world2grid, time_scaling)

    def _prepared(self, raw: np.ndarray) -> np.ndarray:
        """The backward step as DIPY's ``_iterate`` prepares it before its update."""
        sdr = self.sdr
        step = sdr._SymmetricDiffeomorphicRegistration__set_no_boundary_displacement(np.array(raw))
        spacing = sdr.static_ss.get_spacing(sdr.current_level)
        nrm = np.sqrt(np.sum((step / spacing) ** 2, -1)).max()
        if nrm > 0:
            step /= nrm
        return step

    def _composed(self, field, raw, world2grid, time_scaling):
        """(the prepared step, the updated field, the field's mean norm before)."""
        step = self._prepared(raw)
        mean_norm = np.sqrt(np.sum(np.array(field) ** 2, -1)).mean()
        out = np.empty_like(field)
        self.sdr.compose(field, step, None, world2grid, time_scaling, out)
        return step, out, mean_norm

    def close(self) -> None:
        """Wait for an update nobody asked for, and stop the thread."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].result()
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
