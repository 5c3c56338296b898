"""The Register dock widget: run the SimpleITK engine on a worker with a live metric plot."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from napari_ccf_align.core import sampling
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import Cancelled, CcfAlignError
from napari_ccf_align.core.progress import CancelToken, ProgressEvent
from napari_ccf_align.core.register import methods, pipeline, rigid, setting_fields, syn
from napari_ccf_align.core.register.result import scale_note
from napari_ccf_align.core.volume import robust_range
from napari_ccf_align.plugin.layer_data import image_layer_data, placed_volume
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets import _layers, _worker
from napari_ccf_align.plugin.widgets._layers import (
    FINISHED_KEY,
    add_layer_data,
    choose_inputs,
    input_choices,
    is_atlas,
    keep_inputs_fresh,
)
from napari_ccf_align.plugin.widgets._view import (
    StepWidget,
    follow_anatomy,
    row,
    scrollable,
    wrapping,
)
from napari_ccf_align.plugin.widgets.metric_plot import MetricPlot

_METRICS = [
    ("Mattes mutual information", "mattes"),
    ("normalised correlation", "correlation"),
    ("mean squares", "mean_squares"),
    ("ANTS neighbourhood correlation", "ants_nc"),
]
#: The metric as the plot names it; SimpleITK minimises every metric, so lower is better.
_PLOT_TITLES = {
    "mattes": "Mattes MI (SimpleITK minimises −MI: lower is better)",
    "correlation": "−correlation (lower is better)",
    "mean_squares": "mean squares (lower is better)",
    "ants_nc": "−ANTS NC (lower is better)",
}
RESULT_KEY = _layers.RESULT_KEY  # (defined beside the layer helpers)
MOVING_KEY = "ccf_align_moving"  # the name of the layer a result registered
RUN_KEY = "ccf_align_run"  # what the run was asked: method, alignment state, start map


def _tooltip(name: str, stage: str) -> str:
    s = setting_fields.setting(name, stage)
    return f"{s.help[0].upper()}{s.help[1:]} (default: {s.shown_default()}; {s.flag})."


def _field(kind, name: str, stage: str, **kwargs):
    """A form field of setting ``name``, labelled as the table says, its help as tooltip."""
    s = setting_fields.setting(name, stage)
    return kind(label=s.label, tooltip=_tooltip(name, stage), **kwargs)


def _switch(name: str, value: bool) -> CheckBox:
    s = setting_fields.setting(name, "rigid")
    return CheckBox(text=s.label, value=value, tooltip=_tooltip(name, "rigid"))


def _first_sentence(text: str) -> str:
    """``"Step too small after 21 iterations. Current step ..."`` -> its first sentence."""
    text = text.strip()
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


class RegisterWidget(StepWidget):
    """Method, metric and parameters; Run and Cancel; progress; live metric plot."""

    step_title = "Register"

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        sampling.warm_up_in_background()  # compiled off the GUI thread, ready for the first preview
        self.viewer = napari_viewer
        self.model = model_for(napari_viewer)
        self.worker = None
        self._token: CancelToken | None = None
        self._asked: dict = {}  # method, state and start of the run under way
        self._started = time.perf_counter()
        self.runs = 0
        self._replaced = False  # whether the last result replaced a layer of the same name
        self.last_result: tuple[str, rigid.RigidResult | syn.SynResult] | None = (
            None  # (layer, result)
        )
        d = rigid.RigidSettings()

        self.fixed = ComboBox(label="atlas (fixed)", choices=self._inputs)
        self.moving = ComboBox(label="your volume (moving)", choices=self._inputs)
        self.method = ComboBox(
            label="method",
            choices=[(label, name) for name, label in methods.METHODS],
            value=methods.DEFAULT_METHOD,
        )
        self.start_from = ComboBox(
            label="start from",
            choices=[("the Align state", "align"), ("the last result", "last")],
            value="align",
        )
        self.metric = _field(ComboBox, "metric", "rigid", choices=_METRICS, value=d.metric)
        self.bins = _field(SpinBox, "bins", "rigid", min=4, max=256, value=d.bins)
        self.fraction = _field(
            FloatSpinBox, "sampling_fraction", "rigid", min=0.01, max=1.0, step=0.05,
            value=d.sampling_fraction,
        )  # fmt: skip
        self.max_samples = _field(
            SpinBox, "max_samples", "rigid", min=100, max=10_000_000, step=1000,
            value=d.max_samples,
        )  # fmt: skip
        self.iterations = _field(
            SpinBox, "iterations", "rigid", min=1, max=5000, value=d.iterations
        )
        self.show_advanced = CheckBox(text="advanced", value=False)
        self.sampling = _field(
            ComboBox, "sampling", "rigid", choices=list(rigid.SAMPLINGS), value=d.sampling
        )
        self.levels = _field(LineEdit, "levels", "rigid", value=rigid.format_levels(d.levels))
        self.optimizer = _field(
            ComboBox, "optimizer", "rigid", value=d.optimizer,
            choices=[("regular step", "regular_step"), ("gradient descent", "gradient_descent")],
        )  # fmt: skip
        self.learning_rate = _field(
            FloatSpinBox, "learning_rate", "rigid", min=0.001, max=10.0, step=0.1,
            value=d.learning_rate,
        )  # fmt: skip
        self.min_step = _field(
            FloatSpinBox, "min_step", "rigid", min=1e-6, max=1.0, step=1e-4, value=d.min_step
        )
        self.min_step.native.setDecimals(6)
        self.clip_low = FloatSpinBox(
            label="clip below (percentile)", min=0, max=50, value=d.clip_percentiles[0],
            tooltip=_tooltip("clip_percentiles", "rigid"),
        )  # fmt: skip
        self.clip_high = FloatSpinBox(
            label="clip above (percentile)", min=50, max=100, value=d.clip_percentiles[1],
            tooltip=_tooltip("clip_percentiles", "rigid"),
        )  # fmt: skip
        self.ants_radius = _field(
            SpinBox, "ants_radius", "rigid", min=1, max=30, value=d.ants_radius
        )
        ds = syn.SynSettings()
        self.syn_metric = _field(
            ComboBox, "metric", "syn", value=ds.metric,
            choices=[("cross-correlation", "cc"), ("squared differences", "ssd"), ("EM", "em")],
        )  # fmt: skip
        self.syn_iters = _field(
            LineEdit, "level_iters", "syn", value=methods.format_level_iters(ds.level_iters)
        )
        self.syn_resolution = _field(
            ComboBox, "working_resolution_um", "syn",
            choices=list(methods.WORKING_RESOLUTIONS_UM),
            value=round(methods.DEFAULT_WORKING_RESOLUTION_UM),
        )  # fmt: skip
        self.syn_step = _field(
            FloatSpinBox, "step_length", "syn", min=0.01, max=2.0, step=0.05,
            value=ds.step_length,
        )  # fmt: skip
        self.syn_radius = _field(SpinBox, "radius", "syn", min=1, max=20, value=ds.radius)
        self.syn_sigma = _field(
            FloatSpinBox, "sigma_diff", "syn", min=0.1, max=20.0, step=0.5, value=ds.sigma_diff
        )
        self.syn_tol = _field(
            FloatSpinBox, "opt_tol", "syn", min=1e-8, max=1.0, step=1e-5, value=ds.opt_tol
        )
        self.syn_tol.native.setDecimals(8)
        self.syn_window = _field(
            SpinBox, "energy_window", "syn", min=3, max=100, value=ds.energy_window
        )
        self.syn_scale = _field(
            FloatSpinBox, "ss_sigma_factor", "syn", min=0.01, max=10.0, step=0.05,
            value=ds.ss_sigma_factor,
        )  # fmt: skip
        self.syn_inv_iter = _field(SpinBox, "inv_iter", "syn", min=1, max=1000, value=ds.inv_iter)
        self.syn_inv_tol = _field(
            FloatSpinBox, "inv_tol", "syn", min=1e-6, max=1.0, step=1e-3, value=ds.inv_tol
        )
        self.syn_inv_tol.native.setDecimals(6)
        self.syn_process = CheckBox(
            text="run SyN in its own process (the GUI never waits for it)", value=True
        )
        self.syn_box = Container(
            widgets=[self.syn_iters, self.syn_resolution, self.syn_process], visible=False
        )
        # the SyN fields a user seldom changes (defaults chosen on real brains, issue 19),
        # under "advanced" so that the form, the bar and the plot fit a 1280 x 800 screen
        self.syn_tuning = Container(
            widgets=[
                self.syn_metric,
                self.syn_radius,
                self.syn_sigma,
                self.syn_step,
                self.syn_tol,
                self.syn_window,
                self.syn_scale,
                self.syn_inv_iter,
                self.syn_inv_tol,
            ],
            visible=False,
        )
        self.seed = _field(SpinBox, "seed", "rigid", min=0, max=2**31 - 1, value=d.seed)
        self.n4 = _switch("bias_correction", d.bias_correction)
        self.match = _switch("match_histogram", d.match_histogram)
        self.threads = _field(SpinBox, "threads", "rigid", min=0, max=1024, value=d.threads)
        self.advanced = Container(
            widgets=[
                self.bins,
                self.sampling,
                self.fraction,
                self.max_samples,
                self.levels,
                self.optimizer,
                self.learning_rate,
                self.min_step,
                self.ants_radius,
                self.seed,
                self.threads,
                self.clip_low,
                self.clip_high,
                self.n4,
                self.match,
                self.syn_tuning,
            ],
            visible=False,
        )
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.bar = ProgressBar(value=0, max=100)
        self.status = Label(value="")
        wrapping(self.status)
        self.form = Container(
            widgets=[
                self.fixed,
                self.moving,
                self.start_from,
                self.method,
                self.metric,
                self.iterations,
                self.syn_box,
                self.show_advanced,
                self.advanced,
                row(self.run_button, self.cancel_button),
            ]
        )
        self.plot = MetricPlot(self.viewer.theme)
        self.save_png = PushButton(text="Save plot (PNG)")
        self.save_csv = PushButton(text="Save data (CSV)")

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.form.native)
        layout.addWidget(Container(widgets=[self.bar, self.status], labels=False).native)
        layout.addWidget(self.plot)
        layout.addWidget(row(self.save_png, self.save_csv).native)
        layout.addStretch(1)
        scrollable(self, body)

        self.show_advanced.changed.connect(lambda v: setattr(self.advanced, "visible", v))
        self.metric.changed.connect(self._on_metric)
        self.method.changed.connect(self._on_method)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.save_png.changed.connect(lambda: self._save("png"))
        self.save_csv.changed.connect(lambda: self._save("csv"))
        follow_anatomy(self.viewer)
        keep_inputs_fresh(self.viewer, self.fixed, self.moving, lambda: self.model.moving_layer)
        self.model.session_loaded.connect(self.restore)
        self._on_method(self.method.value)
        self.viewer.events.theme.connect(lambda event: self.plot.set_theme(str(event.value)))

    # ------------------------------------------------------------------ form

    def _inputs(self, _widget=None):
        return input_choices(self.viewer)

    def _on_metric(self, metric: str) -> None:
        # ANTS neighbourhood correlation needs every voxel; the others sample.
        self.sampling.value = "none" if metric == "ants_nc" else "random"
        self.bins.enabled = metric == "mattes"

    def _on_method(self, method: str) -> None:
        self.syn_box.visible = self.syn_tuning.visible = "syn" in method
        if method == "syn":  # SyN alone continues from an earlier result
            self.start_from.value = "last"

    def syn_settings(self) -> syn.SynSettings:
        """The SyN part of the form (raises CcfAlignError on bad values)."""
        return syn.SynSettings(
            metric=self.syn_metric.value,
            level_iters=methods.parse_level_iters(self.syn_iters.value),
            step_length=float(self.syn_step.value),
            radius=int(self.syn_radius.value),
            bias_correction=bool(self.n4.value),
            match_histogram=bool(self.match.value),
            sigma_diff=float(self.syn_sigma.value),
            opt_tol=float(self.syn_tol.value),
            energy_window=int(self.syn_window.value),
            ss_sigma_factor=float(self.syn_scale.value),
            inv_iter=int(self.syn_inv_iter.value),
            inv_tol=float(self.syn_inv_tol.value),
            clip_percentiles=(float(self.clip_low.value), float(self.clip_high.value)),
            working_resolution_um=float(self.syn_resolution.value),
        )

    def settings(self) -> rigid.RigidSettings:
        """A new settings object from the form (raises CcfAlignError on bad values)."""
        linear = self.method.value.partition("+")[0]
        return rigid.RigidSettings(
            transform=linear if linear in rigid.TRANSFORMS else "rigid",
            metric=self.metric.value,
            bins=int(self.bins.value),
            ants_radius=int(self.ants_radius.value),
            sampling=self.sampling.value,
            sampling_fraction=float(self.fraction.value),
            max_samples=int(self.max_samples.value),
            levels=rigid.parse_levels(self.levels.value),
            iterations=int(self.iterations.value),
            optimizer=self.optimizer.value,
            learning_rate=float(self.learning_rate.value),
            min_step=float(self.min_step.value),
            clip_percentiles=(float(self.clip_low.value), float(self.clip_high.value)),
            seed=int(self.seed.value),
            threads=int(self.threads.value),
            bias_correction=bool(self.n4.value),
            match_histogram=bool(self.match.value),
        )

    def start_state(self, moving_name: str) -> AlignmentState:
        """The Align widget's state when it aligns this layer, else identity."""
        if self.model.moving_layer == moving_name:
            return self.model.state
        return AlignmentState()

    def start_matrix(self, moving_name: str) -> np.ndarray | None:
        """The last result's moving -> atlas map when "start from" asks for it, else None."""
        if self.start_from.value != "last":
            return None
        if self.last_result is None or self.last_result[0] != moving_name:
            raise CcfAlignError(
                f"There is no result for {moving_name!r} yet to start from: run once from the "
                "Align state first."
            )
        return self.last_result[1].matrix

    def restore(self, loaded) -> None:
        """Show a loaded session's method and settings, and take its result as the last one."""
        saved, moving_name = loaded
        # the session's sample, never the warped result a fresh viewer listed first
        choose_inputs(self.viewer, self.fixed, self.moving, moving_name)
        self.method.value = saved.method
        r = saved.rigid_settings
        if r is not None:
            self.metric.value = r.metric
            self.bins.value = r.bins
            self.ants_radius.value = r.ants_radius
            self.sampling.value = r.sampling
            self.fraction.value = r.sampling_fraction
            self.max_samples.value = r.max_samples
            self.levels.value = rigid.format_levels(r.levels)
            self.iterations.value = r.iterations
            self.optimizer.value = r.optimizer
            self.learning_rate.value = r.learning_rate
            self.min_step.value = r.min_step
            self.clip_low.value, self.clip_high.value = r.clip_percentiles
            self.seed.value = r.seed
            self.threads.value = r.threads
            self.n4.value, self.match.value = r.bias_correction, r.match_histogram
        y = saved.syn_settings
        if y is not None:
            self.syn_metric.value = y.metric
            self.syn_iters.value = methods.format_level_iters(y.level_iters)
            self.syn_step.value = y.step_length
            self.syn_radius.value = y.radius
            self.syn_sigma.value = y.sigma_diff
            self.syn_tol.value = y.opt_tol
            self.syn_window.value = y.energy_window
            self.syn_scale.value = y.ss_sigma_factor
            self.syn_inv_iter.value = y.inv_iter
            self.syn_inv_tol.value = y.inv_tol
            if y.working_resolution_um is not None:
                res = round(y.working_resolution_um)
                if res not in self.syn_resolution.choices:
                    self.syn_resolution.choices = sorted({*self.syn_resolution.choices, res})
                self.syn_resolution.value = res
        self.start_from.value = "align"
        self.last_result = (moving_name, saved.result)
        self.status.value = (
            f"Session loaded: {saved.method} of {moving_name!r}. Run again to repeat it, or "
            "inspect the result."
        )

    # ------------------------------------------------------------------ run

    def run(self, _value=None):
        """Start a registration on a worker thread (Run is disabled until it ends)."""
        fixed_layer, moving_layer = self.fixed.value, self.moving.value
        try:
            if fixed_layer is None or moving_layer is None:
                raise CcfAlignError(
                    "Choose the atlas and your volume first (load them with the Load widget)."
                )
            if fixed_layer.name == moving_layer.name:
                raise CcfAlignError(
                    "The atlas and your volume are the same layer: pick two layers."
                )
            if not is_atlas(fixed_layer):
                raise CcfAlignError(
                    f"{fixed_layer.name!r} is not an atlas (it was not loaded as the Allen CCF "
                    "or an atlas file): choose the atlas as 'atlas (fixed)', or load it with "
                    "the Load widget."
                )
            settings = self.settings()
            syn_settings = self.syn_settings()
            method = self.method.value
            isolate = bool(self.syn_process.value)
            fixed, moving = placed_volume(fixed_layer), placed_volume(moving_layer)
            state = self.start_state(moving_layer.name)
            start = self.start_matrix(moving_layer.name)
        except CcfAlignError as exc:
            self.status.value = str(exc)
            show_error(str(exc))
            return None
        self.status.value = "Starting..."
        moving_name = moving_layer.name
        self._asked = {"method": method, "state": state, "start": start}
        token = self._token = CancelToken()
        relay = _worker.ProgressRelay(min_interval_s=0.0, parent=self)
        relay.event.connect(self._on_progress)
        self.plot.clear(_PLOT_TITLES[settings.metric])
        self._set_running(True)
        self.runs += 1
        self._started = time.perf_counter()  # the whole run: every stage, and the warp

        def job():
            result = pipeline.run(
                fixed,
                moving,
                method,
                state,
                settings,
                syn_settings,
                start=start,
                on_progress=relay.emit_event,
                cancel=token,
                isolate_syn=isolate,
            )
            token.raise_if_cancelled("The registration")
            warped = result.warp(fixed, moving)
            warped = replace(warped, name=f"{moving_name} ({method})")
            return moving_name, result, warped, robust_range(warped.data)

        self.worker = _worker.start(
            job,
            on_done=self._on_done,
            on_error=self._on_error,
        )
        return self.worker

    def cancel(self, _value=None) -> None:
        """Stop the run at its next iteration; the viewer stays as it was."""

        if self._token is not None:
            self._token.cancel()
            self.status.value = "Cancelling..."

    def _on_progress(self, event: ProgressEvent) -> None:
        self.plot.add(event)
        if event.total:
            self.bar.max = int(event.total)
            self.bar.value = int(min(event.done, event.total))
        self.status.value = event.message

    def _on_done(self, outcome) -> None:
        moving_name, result, warped, limits = outcome
        self.last_result = (moving_name, result)
        self._replaced = warped.name in self.viewer.layers  # the same method run again
        try:
            layer = add_layer_data(
                self.viewer,
                image_layer_data(
                    warped,
                    colormap="magenta",
                    blending="additive",
                    contrast_limits=limits,
                    visible=False,
                    metadata={
                        RESULT_KEY: result,
                        MOVING_KEY: moving_name,
                        RUN_KEY: self._asked,
                        FINISHED_KEY: time.strftime("%H:%M:%S"),
                    },
                ),
            )
        except Exception:
            self._set_running(False)
            raise
        layer.metadata.update(  # (when an existing layer was updated)
            {
                RESULT_KEY: result,
                MOVING_KEY: moving_name,
                RUN_KEY: self._asked,
                FINISHED_KEY: time.strftime("%H:%M:%S"),
            }
        )
        # shown in the next event-loop turn: napari's new layer (controls, visual) and its
        # first draw (shader compilation) each take tens of milliseconds on the GUI thread
        # (a timer, not a zero-delay call: Qt would run that before any pending paint or input)
        QTimer.singleShot(10, lambda: self._show_result(layer, result))

    def _show_result(self, layer: Image, result: rigid.RigidResult) -> None:
        try:
            # show the result over the atlas: hide (never change) the inputs, the preview and
            # earlier results. By name: a docked widget's viewer hands out layer proxies, so
            # an identity test never matches.
            layer.visible = True
            keep = {layer.name, getattr(self.fixed.value, "name", None)}
            for other in self.viewer.layers:
                if other.name not in keep and isinstance(other, Image):
                    other.visible = False
            self.bar.value = self.bar.max
            follow = (
                "Next: check it by eye."
                if result.deformable
                else "Next: check it by eye, or run again starting from this result (e.g. "
                "affine, or SyN)."
            )
            scale = scale_note(result.matrix)
            self.status.value = (
                f"Done in {time.perf_counter() - self._started:.1f} s: metric {result.final_metric:.5g}"
                + (f"; {scale}" if scale else "")
                + f". {_first_sentence(result.stop_reason.split(':')[-1])} {follow}"
            )
            # short: napari's notification shows one line (the status line has the rest)
            show_info(
                f"Replaced {layer.name!r} by the new run."
                if self._replaced
                else f"Registered: added {layer.name!r}."
            )
            self.model.result_finished.emit(layer.name)  # the pickers follow the newest run
        finally:
            self._set_running(False)  # Run comes back once the result is on screen

    def _on_error(self, exc: BaseException) -> None:
        self._set_running(False)
        if isinstance(exc, Cancelled):
            self.status.value = "Cancelled; nothing was changed."
            show_info("Registration cancelled; nothing was changed.")
        else:
            self.status.value = _worker.error_sentence(exc)
            show_error(self.status.value)

    def _set_running(self, running: bool) -> None:
        self.run_button.enabled = not running
        self.cancel_button.enabled = running
        if not running:
            self._token = None

    def _save(self, kind: str) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, f"Save metric {kind.upper()}", f"metric.{kind}", f"{kind.upper()} (*.{kind})"
        )
        if not path:
            return
        try:
            (self.plot.save_png if kind == "png" else self.plot.save_csv)(Path(path))
        except CcfAlignError as exc:
            show_error(str(exc))
