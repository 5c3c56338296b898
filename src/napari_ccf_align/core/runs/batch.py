"""The same recipe over many brains on dask.distributed.

Each brain is one task: read, register, save its session under ``out/<name>``.
A brain that fails is reported in its row and does not stop the others. The
atlas is loaded once by the caller and broadcast to the workers, so workers need
neither network nor the atlas cache; they do need to see the sample files and
the output folder at the same paths (one machine, or a shared file system).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from napari_ccf_align.core.errors import CcfAlignError, InputError, NetworkError
from napari_ccf_align.core.io.volumes import first_line
from napari_ccf_align.core.runs import headless


@dataclass(frozen=True)
class BatchRow:
    """The outcome for one brain.

    Attributes
    ----------
    name : str
        The brain's name (its session folder's name under the batch output).
    status : {"ok", "failed"}
        Whether its session was written.
    seconds : float
        Wall time of its task (read, register, save), s.
    final_metric : float or None
        The registration's last metric value.
    ncc_before, ncc_after : float or None
        Normalised cross-correlation with the atlas over the brain: hand
        alignment, and after the run.
    message : str
        The summary line, or the sentence saying why it failed.
    """

    name: str
    path: str
    status: str
    seconds: float
    final_metric: float | None = None
    ncc_before: float | None = None
    ncc_after: float | None = None
    message: str = ""


#: Seconds to wait for a dask scheduler given by address.
SCHEDULER_TIMEOUT_S = 20
#: The longest session folder name batch makes from a file name (characters).
MAX_NAME = 120


def session_names(paths: Sequence[str | os.PathLike]) -> list[str]:
    """One distinct folder name per input: the file name without its ending, numbered if repeated."""
    from napari_ccf_align.core.io import file_stem

    names: list[str] = []
    for p in paths:
        # a name that leads nowhere ('..nii.gz' has the stem '..') or hides ('.x') gets a
        # plain one; long names are cut so that the folder and its temporary name fit
        base = file_stem(p).lstrip(".")[:MAX_NAME] or "brain"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def register_one(
    path: str,
    recipe: headless.Recipe,
    out: str,
    fixed: headless.Fixed,
    threads: int = 0,
    write_report: bool = True,
) -> BatchRow:
    """One brain (runs on a worker): never raises, the row says what happened."""
    t0 = time.perf_counter()
    name = Path(out).name
    headless.quiet_dipy_log()
    if threads:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(int(threads))
    try:
        s = headless.register_file(path, recipe, out, fixed=fixed, write_report=write_report)
    except CcfAlignError as exc:
        return BatchRow(name, str(path), "failed", time.perf_counter() - t0, message=str(exc))
    except Exception as exc:  # one brain's bug must not stop the others; its row says so
        return BatchRow(
            name,
            str(path),
            "failed",
            time.perf_counter() - t0,
            message=f"unexpected error ({type(exc).__name__}: {exc})",
        )
    from napari_ccf_align.core.results.report import NCC

    ncc = [f.get(NCC) for f in s.figures.values()]
    return BatchRow(
        name,
        str(path),
        "ok",
        time.perf_counter() - t0,
        float(s.result.final_metric),
        ncc[0] if ncc else None,
        ncc[-1] if ncc else None,
        headless.summary(s, out),
    )


def run_batch(
    recipe: headless.Recipe,
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    fixed: headless.Fixed,
    scheduler: str | None = None,
    workers: int = 2,
    write_report: bool = True,
    on_row: Callable[[BatchRow], None] | None = None,
) -> list[BatchRow]:
    """Register every brain in ``paths`` with ``recipe``; one session per brain under ``out``.

    Parameters
    ----------
    fixed : headless.Fixed
        The atlas, loaded once here and sent to every worker.
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:8786``); default a
        ``LocalCluster`` of ``workers`` processes on this machine.
    workers : int
        Worker processes of the local cluster (one brain at a time each; the
        machine's cores are shared among them).
    on_row : callable, optional
        Called with each :class:`BatchRow` as its brain finishes.

    Returns
    -------
    list of BatchRow
        In the order of ``paths``.
    """
    from distributed import Client, LocalCluster, as_completed

    if not paths:
        raise InputError("No brains were given: list the sample files to register.")
    if workers < 1:
        raise InputError(f"{workers} workers cannot run anything: give 1 or more.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = session_names(paths)
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise NetworkError(
                f"Could not reach the dask scheduler at {scheduler} within "
                f"{SCHEDULER_TIMEOUT_S} s ({first_line(exc)}): check its address and that it "
                "runs, or leave out --scheduler to use a local cluster."
            ) from None
        threads = 0
    else:
        # one brain at a time per worker, the machine's cores shared among the workers (dask
        # would otherwise pin every worker's OpenMP/BLAS pools to one thread)
        threads = max(1, (os.cpu_count() or 1) // workers)
        pools = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: no clash (and warning) with another cluster
            env={name: str(threads) for name in pools},
        )
        client = Client(cluster)
    rows: dict[str, BatchRow] = {}
    try:
        atlas_data = client.scatter(fixed, broadcast=True)
        futures = {
            client.submit(
                register_one,
                str(Path(p).absolute()),
                recipe,
                str((out / name).absolute()),
                atlas_data,
                threads,
                write_report,
                key=f"register-{name}",
                pure=False,
            ): (name, str(p))
            for name, p in zip(names, paths, strict=True)
        }
        t0 = time.perf_counter()
        for future in as_completed(futures):
            name, path = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # the worker died (out of memory, killed)
                row = BatchRow(
                    name,
                    path,
                    "failed",
                    time.perf_counter() - t0,
                    message=f"its worker stopped ({type(exc).__name__}: {exc})",
                )
            rows[name] = row
            if on_row is not None:
                on_row(row)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [rows[name] for name in names]


def table(rows: Sequence[BatchRow]) -> str:
    """The rows as a text table (one line per brain)."""

    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    head = (
        f"{'brain':<24} {'status':<7} {'seconds':>8} {'metric':>12} {'NCC before':>10} {'after':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.name[:24]:<24} {r.status:<7} {r.seconds:>8.1f} {num(r.final_metric, '.5g'):>12} "
            f"{num(r.ncc_before, '.3f'):>10} {num(r.ncc_after, '.3f'):>7}"
        )
        if r.status != "ok":
            lines.append(f"    {r.message}")
    ok = sum(r.status == "ok" for r in rows)
    lines.append(f"{ok} of {len(rows)} brains registered.")
    return "\n".join(lines)
