"""Every setting a run uses is a ``register`` flag and a Register-form field, with the default
shown in ``--help`` and in the form (issue 19), all read from one table."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from napari_ccf_align.cli import commands
from napari_ccf_align.cli.parser import build_parser
from napari_ccf_align.core.register import methods, rigid, syn
from napari_ccf_align.core.register.setting_fields import SETTINGS, setting

#: For each setting, a value other than its default: the flag's words, the value the run's
#: settings must then hold, and the value to put in the form's field.
OTHER = {
    ("metric", "rigid"): (["correlation"], "correlation", "correlation"),
    ("iterations", "rigid"): (["37"], 37, 37),
    ("levels", "rigid"): (["2:0.3,1:0"], (rigid.Level(2, 0.3), rigid.Level(1, 0.0)), "2:0.3, 1:0"),
    ("bins", "rigid"): (["48"], 48, 48),
    ("sampling", "rigid"): (["regular"], "regular", "regular"),
    ("sampling_fraction", "rigid"): (["0.35"], 0.35, 0.35),
    ("max_samples", "rigid"): (["5000"], 5000, 5000),
    ("optimizer", "rigid"): (["gradient_descent"], "gradient_descent", "gradient_descent"),
    ("learning_rate", "rigid"): (["0.8"], 0.8, 0.8),
    ("min_step", "rigid"): (["0.001"], 0.001, 0.001),
    ("ants_radius", "rigid"): (["3"], 3, 3),
    ("clip_percentiles", "rigid"): (["1", "99"], (1.0, 99.0), (1.0, 99.0)),
    ("bias_correction", "rigid"): ([], True, True),
    ("match_histogram", "rigid"): ([], True, True),
    ("seed", "rigid"): (["7"], 7, 7),
    ("threads", "rigid"): (["2"], 2, 2),
    ("level_iters", "syn"): (["9,4"], (9, 4), "9, 4"),
    ("working_resolution_um", "syn"): (["50"], 50.0, 50),
    ("metric", "syn"): (["ssd"], "ssd", "ssd"),
    ("radius", "syn"): (["3"], 3, 3),
    ("sigma_diff", "syn"): (["2.5"], 2.5, 2.5),
    ("step_length", "syn"): (["0.5"], 0.5, 0.5),
    ("opt_tol", "syn"): (["0.0002"], 2e-4, 2e-4),
    ("energy_window", "syn"): (["8"], 8, 8),
    ("ss_sigma_factor", "syn"): (["0.4"], 0.4, 0.4),
    ("inv_iter", "syn"): (["15"], 15, 15),
    ("inv_tol", "syn"): (["0.002"], 2e-3, 2e-3),
}
#: Fields set otherwise: the method sets the transform.
NOT_SETTINGS = {("transform", "rigid")}
CLASSES = {"rigid": rigid.RigidSettings, "syn": syn.SynSettings}


def _entries():
    return [(s.name, stage) for s in SETTINGS for stage in s.stages]


def test_every_field_of_both_settings_has_one_entry_and_its_default_is_the_runs():
    fields = {(f.name, st) for st, cls in CLASSES.items() for f in dataclasses.fields(cls)}
    assert sorted(set(_entries()) | NOT_SETTINGS) == sorted(fields)
    assert len(_entries()) == len(set(_entries()))
    assert set(OTHER) == {(s.name, s.stages[0]) for s in SETTINGS}  # a new value for each
    flags = [s.flag for s in SETTINGS]
    assert len(flags) == len(set(flags))
    for name, stage in _entries():
        s, default = setting(name, stage), getattr(CLASSES[stage](), name)
        if s.kind == "levels":
            default = rigid.format_levels(default)
        elif s.kind == "level_iters":
            default = methods.format_level_iters(default).replace(" ", "")
        elif name == "working_resolution_um":  # None (the grid as given) in the core
            default = methods.DEFAULT_WORKING_RESOLUTION_UM
        assert s.default == default, (name, stage)


def _parse(*flags):
    return build_parser().parse_args(["register", "s.nii.gz", "--out", "o", *flags])


def test_no_flag_gives_the_defaults_and_each_flag_reaches_its_setting():
    r, y = commands.settings_from_flags(_parse(), "affine")
    assert r == rigid.RigidSettings(transform="affine")
    assert y == syn.SynSettings(working_resolution_um=methods.DEFAULT_WORKING_RESOLUTION_UM)
    for (name, stage), (words, expected, _) in OTHER.items():
        s = setting(name, stage)
        extra = ["--sampling", "none"] if name == "ants_radius" else []
        got = commands.settings_from_flags(_parse(s.flag, *words, *extra), "rigid")
        assert getattr(got[0 if stage == "rigid" else 1], name) == expected, s.flag
        for other in s.stages:  # a setting of both stages reaches both
            assert getattr(got[0 if other == "rigid" else 1], name) == expected, (s.flag, other)


def test_seed_alone_sums_on_one_thread_and_ants_nc_alone_reads_every_voxel():
    r, _ = commands.settings_from_flags(_parse("--seed", "3"), "rigid")
    assert (r.seed, r.threads) == (3, 1)
    r, _ = commands.settings_from_flags(_parse("--seed", "3", "--threads", "0"), "rigid")
    assert (r.seed, r.threads) == (3, 0)
    r, _ = commands.settings_from_flags(_parse("--metric", "ants_nc"), "rigid")
    assert (r.metric, r.sampling) == ("ants_nc", "none")


def test_a_bad_value_is_one_sentence_naming_it():
    from napari_ccf_align.core.errors import CcfAlignError

    with pytest.raises(CcfAlignError, match="SyN convergence window"):
        commands.settings_from_flags(_parse("--syn-window", "1"), "rigid")
    with pytest.raises(CcfAlignError, match="--syn-iterations '40,x'"):
        commands.settings_from_flags(_parse("--syn-iterations", "40,x"), "rigid")


def test_help_names_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["register", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for s in SETTINGS:
        assert s.flag in text
        assert f"(default: {s.shown_default()})" in text, s.flag
    assert "(default: 1e-05)" in text and "(default: 40,20,5)" in text


def _fields(container):
    for w in container:
        if hasattr(w, "__iter__") and not isinstance(w, str):
            yield from _fields(w)
        else:
            yield w


@pytest.mark.gui
def test_the_docked_form_has_a_field_for_every_setting_that_reaches_the_run(
    make_napari_viewer,
):
    viewer = make_napari_viewer()
    widget = viewer.window.add_plugin_dock_widget("napari-ccf-align", "Register")[1]
    widget.method.value = "rigid+affine+syn"
    assert widget.syn_settings() == syn.SynSettings(
        working_resolution_um=methods.DEFAULT_WORKING_RESOLUTION_UM
    )
    assert widget.settings() == rigid.RigidSettings(transform="rigid")
    by_label = {}
    for w in _fields(widget.form):
        by_label[getattr(w, "text", None) or w.label] = w
    for (name, stage), (_, expected, shown) in OTHER.items():
        s = setting(name, stage)
        before = (widget.settings(), widget.syn_settings())
        if s.kind == "percentiles":
            by_label["clip below (percentile)"].value = shown[0]
            by_label["clip above (percentile)"].value = shown[1]
            tip = by_label["clip below (percentile)"].tooltip
        else:
            field = by_label[s.label]
            assert s.flag in field.tooltip and s.shown_default() in field.tooltip, s.label
            field.value = shown
            tip = field.tooltip
        assert f"(default: {s.shown_default()}" in tip
        after = (widget.settings(), widget.syn_settings())
        for other in s.stages:
            i = 0 if other == "rigid" else 1
            assert getattr(after[i], name) == pytest.approx(expected), (s.label, other)
            assert getattr(before[i], name) != getattr(after[i], name), s.label
        if name == "metric" and stage == "rigid":
            widget.metric.value = "mattes"  # keep sampling free for the next fields

    # a session's settings come back into the form, every one of them
    from napari_ccf_align.plugin.widgets.register import RegisterWidget

    r, y = widget.settings(), widget.syn_settings()
    fresh = RegisterWidget(viewer)
    assert fresh.settings() != r
    saved = SimpleNamespace(
        method="rigid+affine+syn", rigid_settings=r, syn_settings=y, result=None
    )
    fresh.restore((saved, "sample"))
    assert fresh.settings() == r and fresh.syn_settings() == y
