"""The command line's flags: one parser, its sub-commands and their help."""

from __future__ import annotations

import argparse
import re

from napari_ccf_align.cli import commands, demo


def _voxel_size_flag(p: argparse.ArgumentParser, flag: str, whose: str) -> None:
    p.add_argument(
        flag,
        nargs=3,
        type=float,
        metavar=("Z", "Y", "X"),
        help=f"{whose} voxel size in µm per array axis (default: its header's)",
    )


def _geometry_flags(p: argparse.ArgumentParser) -> None:
    _voxel_size_flag(p, "--voxel-size", "the file's")
    p.add_argument("--orientation", help="orientation code of the file's axes, e.g. PIR")
    p.add_argument(
        "--style",
        choices=["nibabel", "brainglobe"],
        help="how the code is written: letters name the direction each axis increases towards "
        "(nibabel, default) or the origin's corner (brainglobe)",
    )


def _atlas_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", help="atlas cache folder (default: the user cache, $CCF_ALIGN_CACHE)")
    p.add_argument("--base-url", help="mirror of the Allen download server")
    p.add_argument(
        "--brainglobe-dir",
        metavar="DIR",
        help="BrainGlobe atlas folder (default: $CCF_ALIGN_BRAINGLOBE_DIR, else BrainGlobe's own)",
    )


def _setting_flags(p: argparse.ArgumentParser) -> None:
    """A flag for every setting of a run (:mod:`~napari_ccf_align.core.register.setting_fields`),
    in two groups; each defaults to None ("not given"), and its help shows the run's default."""
    from napari_ccf_align.core.register.setting_fields import SETTINGS

    groups = {
        "rigid": p.add_argument_group("SimpleITK stages (rigid, similarity, affine)"),
        "syn": p.add_argument_group("DIPY SyN"),
        "both": p.add_argument_group("intensity preparation (every stage)"),
    }
    metavars = {"int": "N", "float": "X", "levels": "SHRINK:MM,...", "level_iters": "N,N,..."}
    for s in SETTINGS:
        group = groups[s.stages[0] if len(s.stages) == 1 else "both"]
        text = f"{s.help} (default: {s.shown_default()})"
        if s.kind == "switch":
            group.add_argument(s.flag, action="store_true", default=None, help=text)
        elif s.kind == "percentiles":
            group.add_argument(s.flag, nargs=2, type=float, metavar=("LOW", "HIGH"), help=text)
        elif s.kind == "choice":
            group.add_argument(s.flag, choices=s.choices, help=text)
        else:
            kind = {"int": whole_number, "float": float}.get(s.kind, str)
            group.add_argument(s.flag, type=kind, metavar=metavars[s.kind], help=text)


def _run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-report", action="store_true", help="skip the QC report (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


_RANGE = re.compile(r"^-?\d*:-?\d*$")
#: Flags whose values are voxel ranges, which may start with '-' (a mistake argparse would
#: take for an unknown flag, answering "expected 3 arguments").
_RANGE_FLAGS = {"--crop": 3}


def protect_ranges(argv: list[str]) -> list[str]:
    """``argv`` with each ``--crop`` value that begins with '-' written as ``' -5:10'``, so
    that argparse reads it as a value and the crop check can say what is wrong with it.

    Examples
    --------
    >>> protect_ranges(["register", "a.tif", "--crop", "-5:10", "0:9", "1:2"])[3]
    ' -5:10'
    """
    out, left = [], 0
    for token in argv:
        if left:
            left -= 1
            if token.startswith("-") and _RANGE.match(token):
                token = " " + token
        elif token in _RANGE_FLAGS:
            left = _RANGE_FLAGS[token]
        out.append(token)
    return out


def whole_number(text: str) -> int:
    """An argparse type: a whole number, said plainly when it is not one ('1e12', '2.5')."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a whole number: write it out in digits, e.g. 200"
        ) from None


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help that shows each flag's default (where it has one) and keeps line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default in (None, False, "", argparse.SUPPRESS) or "default" in text:
            return text
        if isinstance(default, (tuple, list)):
            default = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
        return f"{text} (default: {default})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``napari-ccf-align``."""
    from napari_ccf_align import __version__
    from napari_ccf_align.core.register.methods import DEFAULT_METHOD, METHOD_HELP, METHODS

    parser = argparse.ArgumentParser(
        prog="napari-ccf-align",
        description="Register a mouse-brain volume to the Allen CCF v3 (napari plugin + CLI).",
        epilog="Example: napari-ccf-align register brain.tif --voxel-size 10 5 5 "
        "--orientation PIR --out sessions/brain1",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show DIPY's and dask's own log lines (quiet by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, help: str, example: str, description: str = ""
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help,
            description=description or help[0].upper() + help[1:] + ".",
            epilog=f"Example: {example}",
            formatter_class=_Formatter,
        )

    d = command(
        "demo",
        "napari with the demo loaded (headless without a screen)",
        "napari-ccf-align demo --headless --output demo-session",
    )
    d.add_argument(
        "--headless", action="store_true", help="run the headless demo even with a screen"
    )
    d.add_argument("--screenshot", help="with a screen: save a screenshot of the demo and exit")
    d.add_argument("--output", default="ccf-align-demo", help="session folder of the headless demo")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(func=demo.demo)

    methods = [name for name, _ in METHODS if name != "syn"]
    r = command(
        "register",
        "register a sample file and save the session",
        "napari-ccf-align register brain.tif --voxel-size 10 5 5 --orientation PIR "
        "--atlas-resolution 25 --out sessions/brain1",
        "Register a sample file to the Allen CCF and save the session. Methods:\n"
        + "\n".join(f"  {name:<11} {METHOD_HELP[name]}" for name in methods),
    )
    r.add_argument("moving", help="the sample: NIfTI, NRRD, MHA/MHD or TIFF")
    _geometry_flags(r)
    r.add_argument(
        "--atlas",
        default="allen",
        metavar="NAME",
        help="'allen' (the Allen CCF v3 from the Allen Institute, at --atlas-resolution) or any "
        "BrainGlobe atlas name, e.g. allen_mouse_25um, kim_mouse_25um, whs_sd_rat_39um "
        "(needs brainglobe-atlasapi)",
    )
    r.add_argument(
        "--atlas-resolution",
        type=whole_number,
        help="10, 25, 50 or 100 (µm) of the Allen CCF (default: 25)",
    )
    r.add_argument(
        "--rotate",
        nargs=3,
        type=float,
        default=(0.0, 0.0, 0.0),
        metavar=("RX", "RY", "RZ"),
        help="initial rotation, degrees about the R, A and S axes",
    )
    r.add_argument("--flip", default="", help="mirror across the named axes first, e.g. R")
    r.add_argument("--crop", nargs=3, metavar="START:STOP", help="voxel range per file array axis")
    r.add_argument("--crop-as-mask", action="store_true", help="mask with the crop, keep the grid")
    r.add_argument("--no-centre", action="store_true", help="do not centre the sample on the atlas")
    r.add_argument("--method", choices=methods, default=DEFAULT_METHOD, help="see the list above")
    r.add_argument(
        "--atlas-file",
        metavar="PATH",
        help="register to your own template (any 3D reference volume) instead of the Allen CCF",
    )
    r.add_argument(
        "--atlas-orientation",
        metavar="CODE",
        help="orientation code of --atlas-file's axes (default: its header's; a TIFF needs it)",
    )
    _voxel_size_flag(r, "--atlas-voxel-size", "--atlas-file's")
    r.add_argument(
        "--atlas-labels",
        metavar="PATH",
        help="a label image on --atlas-file's grid, put on your sample like the annotation",
    )
    _setting_flags(r)
    r.add_argument("--out", required=True, help="session folder to write")
    _atlas_flags(r)
    _run_flags(r)
    r.set_defaults(func=commands.register)

    a = command(
        "apply",
        "apply a session's transforms to an image or points",
        "napari-ccf-align apply sessions/brain1 annotation --to sample --out regions.nii.gz",
    )
    a.add_argument("session", help="session folder")
    a.add_argument(
        "image",
        help="an image on the sample's grid (--to atlas), an atlas-space image or the word "
        "'annotation' (--to sample), or a CSV of points",
    )
    a.add_argument("--to", choices=["atlas", "sample"], default="atlas")
    a.add_argument(
        "--resolution",
        type=float,
        metavar="UM",
        help="--to atlas: the atlas grid at this voxel size (µm), e.g. 10 for a 25 µm session "
        "(default: the session's atlas grid)",
    )
    a.add_argument(
        "--on",
        metavar="FILE",
        help="--to sample: the grid of this file over the same sample, e.g. the full level of "
        "an OME-Zarr registered at a coarser one (default: the registered grid)",
    )
    a.add_argument("--labels", action="store_true", help="nearest neighbour: keep label values")
    a.add_argument(
        "--no-regions",
        action="store_true",
        help="points: write coordinates only, without loading the annotation for region names",
    )
    a.add_argument(
        "--points-frame",
        choices=["index", "world"],
        default="index",
        help="CSV coordinates are voxel indices (columns axis-0,axis-1,axis-2, or x,y,z with "
        "z = axis 0) or world RAS mm (axis-0.., x,y,z or r_mm,a_mm,s_mm)",
    )
    _geometry_flags(a)
    _atlas_flags(a)
    a.add_argument(
        "--out",
        required=True,
        help="file to write (.nii.gz, .nrrd, .tif, .csv, or .ome.zarr: written plane by plane)",
    )
    a.add_argument(
        "--force", action="store_true", help="replace --out if it exists (never an input)"
    )
    a.set_defaults(func=commands.apply)

    p = command(
        "replay",
        "a session's settings on another brain",
        "napari-ccf-align replay sessions/brain1 brain2.tif --out sessions/brain2",
    )
    p.add_argument("session", help="session folder whose settings to use")
    p.add_argument("moving", help="the new sample file")
    _geometry_flags(p)
    p.add_argument("--out", required=True, help="new session folder")
    _atlas_flags(p)
    _run_flags(p)
    p.set_defaults(func=commands.replay)

    b = command(
        "batch",
        "a session's settings over many brains (dask.distributed)",
        "napari-ccf-align batch sessions/brain1 brains/*.tif --out sessions/",
    )
    b.add_argument("session", help="session folder whose settings to use")
    b.add_argument("moving", nargs="+", help="sample files")
    _geometry_flags(b)
    b.add_argument("--out", required=True, help="folder for one session per brain")
    b.add_argument("--scheduler", help="address of a running dask scheduler (default: local)")
    b.add_argument("--workers", type=whole_number, default=2, help="local cluster worker processes")
    _atlas_flags(b)
    _run_flags(b)
    b.set_defaults(func=commands.batch)

    e = command(
        "export-brainreg",
        "write a session as brainreg's output folder, for the BrainGlobe tools",
        "napari-ccf-align export-brainreg sessions/brain1 --out brainreg/brain1",
        "Write a session as the folder brainreg writes (brainreg.json, registered_atlas.tiff, "
        "deformation_field_0..2.tiff, volumes.csv, ...), which brainglobe-segmentation, "
        "brainmapper and brainglobe-napari-io read. Needs a session registered to the Allen "
        "CCF or a BrainGlobe atlas.",
    )
    e.add_argument("session", help="session folder")
    e.add_argument("--out", required=True, help="new (or empty) folder for brainreg's files")
    _atlas_flags(e)
    e.set_defaults(func=commands.export_brainreg)

    f = command(
        "fetch-atlas",
        "download the Allen CCF into the cache",
        "napari-ccf-align fetch-atlas --resolution 25",
    )
    f.add_argument("--resolution", type=whole_number, default=25, help="10, 25, 50 or 100 (µm)")
    f.add_argument("--cache", help="cache folder (default: the user cache, or $CCF_ALIGN_CACHE)")
    f.add_argument("--base-url", help="mirror of the Allen download server")
    f.add_argument("--no-annotation", action="store_true", help="template only")
    f.add_argument(
        "--forget",
        metavar="FILE",
        help="first remove FILE (e.g. average_template_25.nrrd) and the hash recorded when it "
        "was first downloaded, so that a new copy is fetched and trusted",
    )
    f.set_defaults(func=commands.fetch_atlas)
    return parser
