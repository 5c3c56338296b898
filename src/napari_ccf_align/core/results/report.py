"""The QC report of a registration: one PNG sheet and an HTML page with the same pictures.

The sheet shows three orthogonal slices through the atlas centre of: the warped
sample over the atlas, the atlas region boundaries over the warped sample, the
deformation grid, and the log2 Jacobian; below them the metric trace (each level's
share of its improvement) and the similarity figures. Drawn with matplotlib's Agg
backend (no Qt). Files are written under a temporary name and renamed.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from napari_ccf_align.core import io
from napari_ccf_align.core.errors import DimensionError
from napari_ccf_align.core.progress import level_progress, same_level
from napari_ccf_align.core.results import qc
from napari_ccf_align.core.volume import Volume

_VIEWS = (("coronal", 1), ("sagittal", 0), ("axial", 2))  # (name, world axis sliced), RAS


def _slice(data: np.ndarray, axis: int) -> np.ndarray:
    """The middle slice along ``axis``, rows running up (the higher RAS axis last → up)."""
    plane = np.take(data, data.shape[axis] // 2, axis=axis)
    return plane.T  # rows = the later world axis, shown with origin="lower"


def _rgb(grey: np.ndarray, colour: np.ndarray, rgb: tuple[float, float, float]) -> np.ndarray:
    out = np.repeat(qc.unit_range(grey)[..., None], 3, axis=-1) * 0.7
    out += qc.unit_range(colour)[..., None] * np.asarray(rgb)
    return np.clip(out, 0, 1)


def figure(
    result,
    fixed: Volume,
    moving: Volume,
    annotation: Volume | None = None,
    figures: dict[str, dict[str, float]] | None = None,
    grid_mm: float = 0.5,
    warped: Volume | None = None,
) -> Figure:
    """The report sheet as a matplotlib Figure (3D atlas grids only).

    Parameters
    ----------
    result : RigidResult or SynResult
        What the registration produced.
    fixed, moving : Volume
        The atlas template (RAS) and the user's volume.
    annotation : Volume, optional
        Atlas labels on the template's grid, for the boundaries column.
    figures : dict, optional
        Similarity figures by column (e.g. ``{"hand alignment": {"NCC": 0.3}, ...}``);
        default: NCC and Mattes MI after the run.
    grid_mm : float
        Deformation grid spacing, mm.
    warped : Volume, optional
        ``result.warp(fixed, moving)`` when already computed.
    """
    if fixed.ndim != 3:
        raise DimensionError("The QC report sheet shows three orthogonal views: give a 3D atlas.")
    from napari_ccf_align.core.align import tissue_threshold

    warped = warped if warped is not None else result.warp(fixed, moving)
    deformation = qc.deformation_of(result, fixed)
    jac, uniform = qc.jacobian_of(result, fixed, deformation)
    log2 = qc.log2_jacobian(jac)
    log2[fixed.data <= tissue_threshold(fixed)] = np.nan  # over the brain only
    edges = qc.region_boundaries(annotation.data) if annotation is not None else None
    figures = figures or {f"after {result.method}": similarity(fixed, warped, annotation)}

    fig = Figure(figsize=(12, 12), dpi=100)
    FigureCanvasAgg(fig)
    spec = fig.add_gridspec(5, 4, height_ratios=[1, 1, 1, 0.8, 0.5])
    titles = ("sample over atlas", "atlas regions", f"grid every {grid_mm:g} mm", "log2 Jacobian")
    image = None
    for row, (name, axis) in enumerate(_VIEWS):
        atlas_slice, sample_slice = _slice(fixed.data, axis), _slice(warped.data, axis)
        across = [k for k in range(3) if k != axis]  # planes across the slice: its lines
        grid = qc.deformation_grid(deformation, fixed.spacing, grid_mm, across)
        panels = (
            _rgb(atlas_slice, sample_slice, (0.9, 0.1, 0.9)),
            _rgb(sample_slice, _slice(edges, axis), (1, 0.2, 0.2)) if edges is not None else None,
            _rgb(sample_slice, _slice(grid, axis), (1, 1, 0)),
        )
        for col, panel in enumerate(panels):
            ax = fig.add_subplot(spec[row, col])
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=10)
            if panel is None:
                ax.text(0.5, 0.5, "no annotation", ha="center", va="center", transform=ax.transAxes)
                continue
            ax.imshow(panel, origin="lower", aspect="equal")
        ax = fig.add_subplot(spec[row, 3])
        ax.set_xticks([])
        ax.set_yticks([])
        if row == 0:
            ax.set_title(titles[3] + (" (uniform)" if uniform else ""), fontsize=10)
        image = ax.imshow(_slice(log2, axis), origin="lower", cmap="PiYG", vmin=-1, vmax=1)
    fig.colorbar(image, ax=fig.axes[-1], fraction=0.05, label="log2 J")

    trace_ax = fig.add_subplot(spec[3, :])
    if result.trace:
        ys = level_progress(result.trace)
        xs = np.arange(len(ys), dtype=float)
        starts = [
            i for i in range(1, len(ys)) if not same_level(result.trace[i], result.trace[i - 1])
        ]
        trace_ax.plot(np.insert(xs, starts, np.nan), np.insert(ys, starts, np.nan), lw=1)
    trace_ax.set_xlabel("iteration (levels side by side)")
    trace_ax.set_ylabel("share of the level's\nimprovement")
    trace_ax.set_title(
        f"{result.method}: {result.seconds:.1f} s, final metric {result.final_metric:.5g}",
        fontsize=10,
    )

    table_ax = fig.add_subplot(spec[4, :])
    table_ax.axis("off")
    columns = list(figures)
    rows = list(next(iter(figures.values())))
    table_ax.table(
        cellText=[[f"{figures[c][r]:.4f}" for c in columns] for r in rows],
        rowLabels=rows,
        colLabels=columns,
        loc="center",
    )
    fig.tight_layout()
    return fig


#: The figures of a stage, each named for what it is.
NCC = "NCC (99.5 %-clipped, over tissue)"
MI = "Mattes MI (nats)"
DICE = "mean Dice (14 major regions)"


def similarity(
    fixed: Volume,
    warped: Volume,
    annotation: Volume | None = None,
    warped_labels: Volume | None = None,
    structures=None,
    brain: np.ndarray | None = None,
) -> dict[str, float]:
    """How alike the atlas and a sample on its grid are, in figures a person can read.

    - :data:`NCC`: correlation over the tissue of both (the atlas's brain, from its
      ``annotation`` when given, and the sample's tissue), each image clipped at its 99.5th
      percentile there, so a saturated spot weighs no more than bright tissue;
    - :data:`MI`: Mattes mutual information (nats, higher = more alike), the rigid engine's
      own measure;
    - :data:`DICE`: where the sample has labels too (``warped_labels``, Allen ids on the
      atlas grid) and ``structures`` names them: the mean Dice of the major regions.

    ``brain`` is ``qc.brain_mask(fixed, annotation)`` when already computed (it is not changed).
    """
    from napari_ccf_align.core.align import tissue_threshold

    brain = qc.brain_mask(fixed, annotation) if brain is None else brain
    data = np.asarray(warped.data)
    if np.ptp(data) > 0:
        brain = brain | (data > tissue_threshold(warped))
    out = {NCC: qc.clipped_ncc(fixed.data, data, brain), MI: qc.mattes_mi(fixed, warped)}
    if warped_labels is not None and annotation is not None and structures is not None:
        out[DICE] = qc.major_region_dice(annotation.data, warped_labels.data, structures)["mean"]
    return out


def stage_figures(
    result,
    fixed: Volume,
    moving: Volume,
    state=None,
    warped: Volume | None = None,
    annotation: Volume | None = None,
    moving_labels: Volume | None = None,
    structures=None,
) -> dict:
    """:func:`similarity` per stage: the hand alignment, the linear stage (for SyN: the
    start it was given) and the whole result.

    ``warped`` is ``result.warp(fixed, moving)`` when already computed (saves a warp);
    ``moving_labels`` (Allen ids on the sample's grid), with the atlas's ``annotation``
    and ``structures``, adds the Dice of the major regions.

    Returns
    -------
    dict
        ``{stage: {figure name: value}}``, the names :data:`NCC`, :data:`MI` (and
        :data:`DICE`).
    """
    from napari_ccf_align.core import align
    from napari_ccf_align.core.register.result import warp_through_matrix

    state = state or align.AlignmentState()
    hand = state.rigid.matrix()
    stages = [("hand alignment", align.preview(fixed, moving, state), hand)]
    if result.deformable:  # its matrix is the linear stage's whole map
        stages.append(
            (
                "after the linear stage",
                warp_through_matrix(fixed, moving, result.matrix),
                result.matrix,
            )
        )
    stages.append(
        (
            f"after {result.method}",
            warped if warped is not None else result.warp(fixed, moving),
            None,
        )
    )
    out = {}
    brain = qc.brain_mask(fixed, annotation)  # once: the atlas's, the same for every stage
    for column, image, matrix in stages:
        labels = None
        if moving_labels is not None:
            labels = (
                result.warp(fixed, moving_labels, labels=True)
                if matrix is None
                else warp_through_matrix(fixed, moving_labels, matrix, labels=True)
            )
        out[column] = similarity(fixed, image, annotation, labels, structures, brain)
    return out


def write(
    folder: str | os.PathLike,
    result,
    fixed: Volume,
    moving: Volume,
    annotation: Volume | None = None,
    figures: dict[str, dict[str, float]] | None = None,
    grid_mm: float = 0.5,
    warped: Volume | None = None,
    seconds: float | None = None,
    settings: dict | None = None,
) -> tuple[Path, Path]:
    """Write ``qc_report.png`` and ``qc_report.html`` into ``folder`` (made if needed).

    ``warped`` is ``result.warp(fixed, moving)`` when already computed (saves a warp);
    ``seconds`` the whole run's time (every stage; else the last stage's is shown) and
    ``settings`` what it ran with (``{"rigid": {...}, "syn": {...}}``), listed on the page.

    Returns
    -------
    (Path, Path)
        The PNG sheet and the HTML page (which embeds the sheet and lists the numbers).
    """
    folder = io.check_output_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    warped = warped if warped is not None else result.warp(fixed, moving)
    figures = figures or {f"after {result.method}": similarity(fixed, warped, annotation)}
    sheet = figure(result, fixed, moving, annotation, figures, grid_mm, warped)
    png = folder / "qc_report.png"
    with io.atomic_path(png) as tmp:
        sheet.savefig(tmp, format="png")
    encoded = base64.b64encode(png.read_bytes()).decode("ascii")
    columns = list(figures)
    rows = list(next(iter(figures.values())))
    cells = "".join(
        "<tr><th>"
        + html.escape(r)
        + "</th>"
        + "".join(f"<td>{figures[c][r]:.4f}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    from napari_ccf_align.core.register.result import scale_note

    stages = [result.linear_stage] if result.deformable and result.linear_stage else []
    stages.append(result)
    stage_rows = "".join(
        f"<tr><td>{'SyN' if r.deformable else html.escape(r.method)}</td><td>{r.seconds:.1f} s</td>"
        f"<td>{html.escape(r.stop_reason)}</td></tr>"
        for r in stages
    )
    total = f"{seconds:.1f} s in all" if seconds is not None else f"{result.seconds:.1f} s"
    scale = scale_note(result.matrix)
    settings_rows = "".join(
        f"<tr><th>{html.escape(stage)}</th><td><code>{html.escape(json.dumps(values))}</code></td></tr>"
        for stage, values in (settings or {}).items()
        if values
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>QC report: {html.escape(moving.name)}</title></head>
<body>
<h1>QC report: {html.escape(moving.name)} → {html.escape(fixed.name)}</h1>
<p>Method: {html.escape(result.method)}; {total}; final metric {result.final_metric:.5g}{
        "; " + html.escape(scale) if scale else ""
    }.</p>
<h2>Stages</h2>
<table border="1"><tr><th>stage</th><th>time</th><th>how it stopped</th></tr>{stage_rows}</table>
<h2>Similarity to the atlas</h2>
<table border="1"><tr><th></th>{head}</tr>{cells}</table>
<p>NCC over the tissue of both with each image clipped at its 99.5th percentile; Mattes MI in
nats (higher is more alike); Dice of the 14 major regions where the sample has labels. Different
modalities never reach 1: judge the rise from the hand alignment, and the pictures below.</p>
<p><img alt="QC sheet" src="data:image/png;base64,{encoded}" style="max-width:100%"></p>
<h2>Settings</h2>
<table border="1">{settings_rows or "<tr><td>(not recorded)</td></tr>"}</table>
</body></html>
"""
    page_path = folder / "qc_report.html"
    with io.atomic_path(page_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return png, page_path
