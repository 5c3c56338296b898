"""The catalogue of bad inputs tried against the core and the command line, by class.

Each case is ``(class, input, call)``: ``call(tmp)`` must raise a ``CcfAlignError``
subclass whose message is one sentence saying what is wrong and what to do.
``tests/test_bad_inputs.py`` runs them; ``python -m tests.bad_inputs`` writes the
table in ``docs/reliability.md`` from the messages they give.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import tifffile

from napari_ccf_align.core import align, frames, io
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.io import atlas, transforms
from napari_ccf_align.core.register import prepare, rigid
from napari_ccf_align.core.results import apply
from napari_ccf_align.core.runs import applying, checks, headless, session
from napari_ccf_align.core.volume import Volume

Case = tuple[str, str, Callable[[Path], object]]


def _vol(shape=(8, 9, 10), value=None, dtype=np.float32, name="v") -> Volume:
    data = (
        np.random.default_rng(0).random(shape).astype(dtype)
        if value is None
        else np.full(shape, value, dtype)
    )
    return Volume.from_array(data, 0.1, "RAS", name=name)


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _nifti(tmp: Path, compress: bool = False, name: str = "v.nii") -> Path:
    return io.write_volume(_vol(), tmp / name, compress=compress)


def _truncated(tmp: Path, suffix: str) -> Path:
    whole = io.write_volume(_vol(), tmp / f"w{suffix}", compress=False).read_bytes()
    return _write(tmp, f"cut{suffix}", whole[: len(whole) - 500])


def _sitk_file(tmp: Path, array: np.ndarray, spacing, name: str) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(tmp / name))
    return tmp / name


def _mhd_without_raw(tmp: Path) -> Path:
    path = io.write_volume(_vol(), tmp / "pair.mhd", compress=False)
    (tmp / "pair.raw").unlink()
    return path


def _cli(*argv: str) -> Callable[[Path], object]:
    """A command as ``napari-ccf-align`` runs it, minus the exit-status wrapper."""
    from napari_ccf_align.cli.parser import build_parser, protect_ranges

    def run(tmp: Path):
        parsed = build_parser().parse_args(protect_ranges(list(argv)))
        return parsed.func(parsed)

    return run


def _graph(tmp: Path, graph) -> Path:
    return _write(tmp, "graph.json", json.dumps(graph).encode())


def _plain_tiff(t) -> str:
    import tifffile

    path = t / "plain.tif"
    tifffile.imwrite(path, np.ones((3, 4, 5), np.uint8), photometric="minisblack")
    return str(path)


def _our_reader(path) -> list:
    from napari_ccf_align.plugin.reader import get_reader

    return get_reader(str(path))(str(path))


CASES: list[Case] = [
    # -- files
    ("file", "missing file", lambda t: io.read_volume(t / "nope.nii.gz")),
    ("file", "unknown format (.png)", lambda t: io.read_volume(_write(t, "x.png", b"\x89PNG"))),
    (
        "file",
        "text file named .nrrd",
        lambda t: io.read_volume(_write(t, "x.nrrd", b"hello\n" * 9)),
    ),
    (
        "file",
        "text file named .nii.gz",
        lambda t: io.read_volume(_write(t, "x.nii.gz", b"hi" * 50)),
    ),
    (
        "file",
        "text file named .tif",
        lambda t: io.read_volume(
            _write(t, "x.tif", b"no tiff"), orientation="RAS", voxel_size_um=10
        ),
    ),
    ("file", "truncated .nii (uncompressed)", lambda t: io.read_volume(_truncated(t, ".nii"))),
    ("file", "truncated .nrrd (raw)", lambda t: io.read_volume(_truncated(t, ".nrrd"))),
    ("file", "truncated .mha (raw)", lambda t: io.read_volume(_truncated(t, ".mha"))),
    (
        "file",
        "truncated .nii.gz",
        lambda t: io.read_volume(
            _write(t, "c.nii.gz", _nifti(t, True, "w.nii.gz").read_bytes()[:300])
        ),
    ),
    ("file", ".mhd whose .raw is missing", lambda t: io.read_volume(_mhd_without_raw(t))),
    (
        "file",
        "4D NIfTI",
        lambda t: io.read_volume(
            _sitk_file(t, np.zeros((2, 3, 4, 5), np.float32), (1, 1, 1, 1), "4d.nii")
        ),
    ),
    (
        "file",
        "all-NaN MHA",
        lambda t: io.read_volume(
            _sitk_file(t, np.full((2, 3, 4), np.nan, np.float32), (1, 1, 1), "n.mha")
        ),
    ),
    ("file", "TIFF without orientation", lambda t: io.read_volume(_tif(t))),
    ("file", "TIFF without voxel size", lambda t: io.read_volume(_tif(t), orientation="RAS")),
    ("file", "RGB TIFF", lambda t: io.read_volume(_rgb_tif(t), orientation="RAS", voxel_size_um=5)),
    (
        "file",
        "empty-axis TIFF",
        lambda t: io.read_volume(_empty_tif(t), orientation="RAS", voxel_size_um=5),
    ),
    (
        "file",
        "header voxel size of 5 m",
        lambda t: io.read_volume(
            _sitk_file(t, np.ones((4, 5, 6), np.float32), (5000.0, 1, 1), "huge.nrrd")
        ),
    ),
    ("file", "voxel size without a code", lambda t: io.read_volume(_nifti(t), voxel_size_um=10)),
    ("file", "peek at a missing file", lambda t: io.peek(t / "gone.nrrd")),
    # -- writing
    ("write", "folder does not exist", lambda t: io.write_volume(_vol(), t / "no" / "x.nii.gz")),
    (
        "write",
        "ending that cannot be written (.png)",
        lambda t: io.write_volume(_vol(), t / "x.png"),
    ),
    ("write", "path is a folder", lambda t: io.write_volume(_vol(), _dir(t, "adir.nii.gz"))),
    ("write", "oblique volume to TIFF", lambda t: io.write_volume(_oblique(), t / "o.tif")),
    ("write", "output folder is a file", lambda t: io.check_output_folder(_write(t, "f", b"x"))),
    # -- voxel size
    ("voxel size", "zero", lambda t: Volume.from_array(np.ones((3, 3, 3)), 0.0, "RAS")),
    (
        "voxel size",
        "negative",
        lambda t: Volume.from_array(np.ones((3, 3, 3)), (-0.1, 0.1, 0.1), "RAS"),
    ),
    ("voxel size", "NaN", lambda t: Volume.from_array(np.ones((3, 3, 3)), float("nan"), "RAS")),
    (
        "voxel size",
        "infinite",
        lambda t: Volume.from_array(np.ones((3, 3, 3)), float("inf"), "RAS"),
    ),
    (
        "voxel size",
        "two sizes for three axes",
        lambda t: Volume.from_array(np.ones((3, 3, 3)), (0.1, 0.1), "RAS"),
    ),
    ("voxel size", "text", lambda t: Volume.from_array(np.ones((3, 3, 3)), "small", "RAS")),
    (
        "voxel size",
        "1 pm (unit mistake)",
        lambda t: Volume.from_array(np.ones((3, 3, 3)), 1e-9, "RAS"),
    ),
    ("voxel size", "2 m (unit mistake)", lambda t: frames.check_voxel_size(2e6, 3, "µm")),
    # -- orientation
    ("orientation", "empty code", lambda t: frames.parse_orientation("", "nibabel")),
    ("orientation", "two letters for 3D", lambda t: frames.parse_orientation("PI", "nibabel")),
    ("orientation", "unknown letter", lambda t: frames.parse_orientation("PIX", "nibabel")),
    ("orientation", "an axis named twice", lambda t: frames.parse_orientation("PAR", "nibabel")),
    ("orientation", "unknown style", lambda t: frames.parse_orientation("PIR", "radiological")),
    (
        "orientation",
        "lower case with nibabel style",
        lambda t: frames.check_style("asl", "nibabel"),
    ),
    (
        "orientation",
        "capitals with BrainGlobe style",
        lambda t: frames.check_style("PIR", "brainglobe"),
    ),
    ("orientation", "code is a number", lambda t: frames.parse_orientation(123, "nibabel")),
    # -- arrays and volumes
    ("volume", "1D array", lambda t: Volume.from_array(np.ones(5), 0.1, "R")),
    ("volume", "4D array", lambda t: Volume.from_array(np.ones((2, 2, 2, 2)), 0.1, "RASX")),
    ("volume", "text array", lambda t: Volume(np.array([["a"]] * 2), np.eye(3), "s", "RA")),
    ("volume", "all-NaN array", lambda t: _vol(value=np.nan)),
    ("volume", "empty axis", lambda t: Volume.from_array(np.ones((3, 0, 3)), 0.1, "RAS")),
    ("volume", "singular affine", lambda t: Volume(np.ones((3, 3, 3)), np.diag([1, 0, 1, 1.0]))),
    ("volume", "affine with NaN", lambda t: Volume(np.ones((3, 3, 3)), np.full((4, 4), np.nan))),
    ("volume", "affine of the wrong shape", lambda t: Volume(np.ones((3, 3, 3)), np.eye(3))),
    ("volume", "affine as text", lambda t: Volume(np.ones((3, 3, 3)), "identity")),
    ("volume", "all-zero volume to register", lambda t: prepare.prepare(_vol(), _vol(value=0))),
    # -- crop
    (
        "crop",
        "outside the volume",
        lambda t: align.check_crop(_vol(), ((0, 50), (0, 5), (0, 5))),
    ),
    ("crop", "empty range", lambda t: align.check_crop(_vol(), ((4, 4), (0, 5), (0, 5)))),
    ("crop", "not pairs", lambda t: AlignmentState(crop=(1, 2, 3))),
    ("crop", "fractional voxels", lambda t: AlignmentState(crop=((0.5, 4), (0, 5), (0, 5)))),
    ("crop", "auto crop of an empty volume", lambda t: align.auto_crop(_vol(value=0))),
    # -- alignment state
    ("alignment", "rotation of two numbers", lambda t: frames.RigidParams(rotation_deg=(1, 2))),
    ("alignment", "NaN shift", lambda t: frames.RigidParams(translation_mm=(0, float("nan"), 0))),
    ("alignment", "flip as text", lambda t: frames.RigidParams(flip="yes")),
    ("alignment", "JSON that is not JSON", lambda t: AlignmentState.from_json("{rigid:")),
    ("alignment", "JSON without 'rigid'", lambda t: AlignmentState.from_json('{"crop": null}')),
    (
        "alignment",
        "JSON with an unknown key",
        lambda t: AlignmentState.from_json(_state_json(extra=1)),
    ),
    (
        "alignment",
        "rigid part is a dict",
        lambda t: AlignmentState(rigid={"rotation_deg": [0, 0, 0]}),
    ),
    (
        "alignment",
        "scaling matrix as rigid",
        lambda t: frames.RigidParams.from_matrix(np.diag([2, 2, 2, 1.0])),
    ),
    # -- engine settings
    ("settings", "unknown transform", lambda t: rigid.RigidSettings(transform="bspline")),
    ("settings", "unknown metric", lambda t: rigid.RigidSettings(metric="mutual")),
    ("settings", "unknown sampling", lambda t: rigid.RigidSettings(sampling="sparse")),
    ("settings", "unknown optimizer", lambda t: rigid.RigidSettings(optimizer="adam")),
    ("settings", "learning rate 0", lambda t: rigid.RigidSettings(learning_rate=0)),
    ("settings", "learning rate NaN", lambda t: rigid.RigidSettings(learning_rate=float("nan"))),
    ("settings", "learning rate as text", lambda t: rigid.RigidSettings(learning_rate="fast")),
    (
        "settings",
        "clip percentiles reversed",
        lambda t: rigid.RigidSettings(clip_percentiles=(99, 1)),
    ),
    (
        "settings",
        "clip percentile above 100",
        lambda t: rigid.RigidSettings(clip_percentiles=(1, 120)),
    ),
    ("settings", "level shrink 0", lambda t: rigid.RigidSettings(levels=((0, 0.4),))),
    ("settings", "levels not pairs", lambda t: rigid.RigidSettings(levels=(4, 2))),
    ("settings", "levels text", lambda t: rigid.parse_levels("4-0.4")),
    ("settings", "ANTS NC with sampling", lambda t: rigid.RigidSettings(metric="ants_nc")),
    ("settings", "sampling fraction 1.5", lambda t: rigid.RigidSettings(sampling_fraction=1.5)),
    (
        "settings",
        "unknown key in saved settings",
        lambda t: rigid.RigidSettings.from_dict({"lr": 1}),
    ),
    # -- registration
    ("registration", "2D volume to the 3D engine", lambda t: rigid.register(_vol2d(), _vol2d())),
    ("registration", "no overlap", lambda t: rigid.register(_vol((20, 20, 20)), _far())),
    (
        "registration",
        "empty atlas mask",
        lambda t: prepare.prepare(_vol(), _vol(), fixed_mask=_vol(value=0)),
    ),
    ("registration", "2D moving against 3D atlas", lambda t: prepare.prepare(_vol(), _vol2d())),
    # -- atlas
    ("atlas", "resolution 30 µm", lambda t: atlas.load_atlas(30)),
    ("atlas", "resolution as text", lambda t: atlas.check_resolution("high")),
    (
        "atlas",
        "server unreachable",
        lambda t: atlas.load_atlas(100, cache=t, base_url="http://127.0.0.1:9/"),
    ),
    (
        "atlas",
        "cache folder is a file",
        lambda t: atlas.load_atlas(100, cache=_write(t, "c", b"x")),
    ),
    ("atlas", "template file is a label volume", lambda t: atlas.load_atlas_files(_labels(t))),
    ("atlas", "grid of another resolution", lambda t: atlas.read_allen_nrrd(_nifti(t), 100)),
    (
        "atlas",
        "structure graph is an HTML page",
        lambda t: atlas.StructureTable.from_file(_write(t, "g.json", b"<html></html>")),
    ),
    ("atlas", "structure graph parents loop", lambda t: atlas.StructureTable.from_graph(_loop())),
    (
        "atlas",
        "structure graph node without id",
        lambda t: atlas.StructureTable.from_graph({"name": "x"}),
    ),
    ("atlas", "unknown region id", lambda t: _table()[99999999]),
    ("atlas", "unknown acronym", lambda t: _table().by_acronym("XYZ")),
    # -- sessions and applying them
    ("session", "folder without session.json", lambda t: session.load(_dir(t, "empty"))),
    ("session", "missing session folder", lambda t: session.load(t / "nowhere")),
    ("session", "session.json is not JSON", lambda t: session.load(_session(t, "{not json"))),
    (
        "session",
        "session.json of another program",
        lambda t: session.load(_session(t, json.dumps({"format": "something else"}))),
    ),
    (
        "session",
        "session from a newer version",
        lambda t: session.load(_session(t, json.dumps({"format": session.FORMAT, "version": 99}))),
    ),
    (
        "session",
        "session.json without its result",
        lambda t: session.load(_session(t, json.dumps({"format": session.FORMAT, "version": 1}))),
    ),
    ("session", "missing rigid.tfm", lambda t: transforms.read_transform(t / "rigid.tfm")),
    (
        "session",
        "a result of unknown kind",
        lambda t: session.load(
            _session(
                t, json.dumps({"format": session.FORMAT, "version": 1, "result": {"kind": "bogus"}})
            )
        ),
    ),
    (
        "session",
        "a 2D rigid.tfm",
        lambda t: checks.check_transform(sitk.Euler2DTransform(), None, t / "rigid.tfm"),
    ),
    (
        "session",
        "a singular rigid.tfm",
        lambda t: checks.check_transform(
            sitk.ScaleTransform(3, (0.0, 1, 1)), None, t / "rigid.tfm"
        ),
    ),
    (
        "session",
        "rigid.tfm and session.json's matrix disagree",
        lambda t: checks.check_transform(sitk.Euler3DTransform(), _shifted(), t / "rigid.tfm"),
    ),
    ("session", "a displacement field of NaN", lambda t: transforms.read_field(_nan_field(t))),
    (
        "session",
        "an embedded file outside the folder",
        lambda t: checks.check_inside(t, "../moving.nii.gz", "embedded sample"),
    ),
    # -- outputs that would replace what they must not
    (
        "output",
        "apply --out is its input",
        lambda t: applying.check_target(_nifti(t), _nifti(t), _dir(t, "s")),
    ),
    (
        "output",
        "apply --out inside the session folder",
        lambda t: applying.check_target(_dir(t, "s") / "warped.nii.gz", _nifti(t), t / "s"),
    ),
    (
        "output",
        "apply --out exists (no --force)",
        lambda t: applying.check_target(_write(t, "old.nii.gz", b"x"), _nifti(t), _dir(t, "s")),
    ),
    (
        "output",
        "points written to an image file",
        lambda t: applying.check_target(t / "p.nii.gz", _write(t, "p.csv", b"x"), _dir(t, "s")),
    ),
    ("file", ".nii.gz short inside a whole gzip stream", lambda t: io.read_volume(_short_gz(t))),
    (
        "file",
        "MHD whose data file is outside its folder",
        lambda t: io.read_volume(
            _mhd_pointing_at(t, "/etc/hostname"), orientation="RAS", voxel_size_um=10
        ),
    ),
    (
        "session",
        "an image given as a displacement field",
        lambda t: transforms.read_field(_nifti(t, True, "f.nii.gz")),
    ),
    (
        "session",
        "saving over a folder of other files",
        lambda t: session.check_session_target(_with_file(t)),
    ),
    (
        "points",
        "missing points file",
        lambda t: apply.read_points_csv(t / "no.csv", _vol(), "index"),
    ),
    ("points", "CSV with a header only", lambda t: _points(t, "a,b,c\n")),
    ("points", "CSV with two numeric columns", lambda t: _points(t, "id,x,y\np,1,2\n")),
    (
        "points",
        "CSV row with a word for a number",
        lambda t: _points(t, "x,y,z\n1,2,3\n4,five,6\n"),
    ),
    (
        "points",
        "unknown coordinate frame",
        lambda t: apply.read_points_csv(_write(t, "p.csv", b"x,y,z\n1,2,3\n"), _vol(), "voxels"),
    ),
    # -- command line
    ("command line", "fetch-atlas --resolution 30", _cli("fetch-atlas", "--resolution", "30")),
    (
        "command line",
        "register --voxel-size 0 10 10",
        lambda t: _cli(
            "register", str(_nifti(t)), "--voxel-size", "0", "10", "10", "--out", str(t / "o")
        )(t),
    ),
    (
        "command line",
        "register --crop 1-5 0:9 0:10",
        lambda t: _cli(
            "register", str(_nifti(t)), "--crop", "1-5", "0:9", "0:10", "--out", str(t / "o")
        )(t),
    ),
    (
        "command line",
        "register --flip X",
        lambda t: _cli("register", str(_nifti(t)), "--flip", "X", "--out", str(t / "o"))(t),
    ),
    (
        "command line",
        "register --syn-iterations 40,lots",
        lambda t: _cli(
            "register",
            str(_nifti(t)),
            "--method",
            "rigid+syn",
            "--syn-iterations",
            "40,lots",
            "--out",
            str(t / "o"),
        )(t),
    ),
    (
        "command line",
        "register --orientation pir (nibabel style)",
        lambda t: _cli("register", str(_nifti(t)), "--orientation", "pir", "--out", str(t / "o"))(
            t
        ),
    ),
    (
        "command line",
        "register --orientation Pir (mixed case)",
        lambda t: _cli("register", str(_nifti(t)), "--orientation", "Pir", "--out", str(t / "o"))(
            t
        ),
    ),
    (
        "command line",
        "register --orientation PIr --style brainglobe",
        lambda t: _cli(
            "register",
            str(_nifti(t)),
            "--orientation",
            "PIr",
            "--style",
            "brainglobe",
            "--out",
            str(t / "o"),
        )(t),
    ),
    (
        "command line",
        "register --rotate 1e308 0 0",
        lambda t: _cli(
            "register", str(_nifti(t)), "--rotate", "1e308", "0", "0", "--out", str(t / "o")
        )(t),
    ),
    (
        "command line",
        "register --iterations 0",
        lambda t: _cli("register", str(_nifti(t)), "--iterations", "0", "--out", str(t / "o"))(t),
    ),
    (
        "command line",
        "register --atlas-resolution 0",
        lambda t: _cli(
            "register", str(_nifti(t)), "--atlas-resolution", "0", "--out", str(t / "o")
        )(t),
    ),
    (
        "command line",
        "register --syn-iterations 0",
        lambda t: _cli(
            "register",
            str(_nifti(t)),
            "--method",
            "rigid+syn",
            "--syn-iterations",
            "0",
            "--out",
            str(t / "o"),
        )(t),
    ),
    (
        "command line",
        "register --syn-iterations 40,,10",
        lambda t: _cli(
            "register",
            str(_nifti(t)),
            "--method",
            "rigid+syn",
            "--syn-iterations",
            "40,,10",
            "--out",
            str(t / "o"),
        )(t),
    ),
    (
        "command line",
        "apply --out is a folder",
        lambda t: _cli("apply", str(t), str(_nifti(t)), "--out", str(_dir(t, "d")))(t),
    ),
    (
        "command line",
        "batch of files that are not there",
        lambda t: _cli("batch", str(t), str(t / "a.nii.gz"), "--out", str(t / "b"))(t),
    ),
    (
        "command line",
        "demo --output is a file",
        lambda t: _cli("demo", "--headless", "--output", str(_write(t, "o", b"x")))(t),
    ),
    (
        "command line",
        "register --crop -5:10 0:9 0:9 (a negative start)",
        lambda t: _cli(
            "register", str(_nifti(t)), "--crop", "-5:10", "0:9", "0:9", "--out", str(t / "crop")
        )(t),
    ),
    (
        "command line",
        "register --out with a 300-character name",
        lambda t: _cli("register", str(_nifti(t)), "--out", str(t / ("s" * 300)))(t),
    ),
    # -- values a file holds
    (
        "file",
        "NaN-masked float NIfTI (half the voxels NaN)",
        lambda t: io.read_volume(_half_nan(t, "masked.nii.gz")),
    ),
    ("file", "an infinite voxel in an NRRD", lambda t: io.read_volume(_one_inf(t, "inf.nrrd"))),
    (
        "file",
        "NIfTI with pixdim 0 and no qform or sform",
        lambda t: io.read_volume(_zero_pixdim(t)),
    ),
    (
        "file",
        ".mhd that names itself as its data file",
        lambda t: io.read_volume(_mhd_pointing_at(t, "away.mhd")),
    ),
    # -- what can be registered
    (
        "register",
        "a 2D section",
        lambda t: prepare.check_registrable(_vol2d()),
    ),
    (
        "register",
        "a volume 3 voxels thick",
        lambda t: prepare.check_registrable(_vol((40, 40, 3))),
    ),
    (
        "register",
        "white noise",
        lambda t: prepare.prepare(_vol((20, 20, 20), value=1.0), _noise()),
    ),
    # -- applying a session to other files
    (
        "apply",
        "--to atlas with an image of another shape",
        lambda t: applying.check_same_tissue(_vol((8, 9, 14), name="other"), _vol()),
    ),
    (
        "apply",
        "--to atlas with the sample's axes read in another order",
        lambda t: applying.check_same_tissue(_vol((40, 9, 8), name="swapped"), _vol((8, 9, 40))),
    ),
    (
        "replay",
        "a file whose header gives another voxel size than the session's flag",
        lambda t: headless.check_replay_geometry(
            headless.Recipe(voxel_size_um=(50.0, 40.0, 40.0)), _nifti(t)
        ),
    ),
    # -- sessions
    (
        "session",
        "format version is text",
        lambda t: session.load(_session(t, json.dumps({"format": session.FORMAT, "version": "x"}))),
    ),
    (
        "session",
        "session.json nested 100,000 deep",
        lambda t: session.load(_session(t, "[" * 100_000 + "]" * 100_000)),
    ),
    # -- points
    (
        "points",
        "a Latin-1 CSV (a name with é)",
        lambda t: apply.read_points_csv(
            _write(t, "p.csv", "x,y,z,nom\n1,2,3,café\n".encode("latin-1")), _vol(), "index"
        ),
    ),
    (
        "write",
        "a file name too long for a temporary name beside it",
        lambda t: io.write_volume(_vol(), t / ("x" * 240 + ".nii.gz")),
    ),
    # -- BrainGlobe atlases, brainreg export, OME-Zarr
    (
        "atlas",
        "an unknown BrainGlobe atlas name",
        lambda t: _brainglobe().load_brainglobe_atlas("allen_mouse_26um", t),
    ),
    (
        "atlas",
        "a BrainGlobe atlas whose structure list lost its ids",
        lambda t: _brainglobe().load_brainglobe_atlas("allen_mouse_100um", _damaged_bg(t)),
    ),
    (
        "cli",
        "--atlas NAME together with --atlas-resolution",
        _cli(
            "register",
            "b.nii.gz",
            "--atlas",
            "allen_mouse_25um",
            "--atlas-resolution",
            "25",
            "--out",
            "s",
        ),
    ),
    (
        "export",
        "export-brainreg of a session registered to an own template",
        lambda t: _brainreg().atlas_identity("volume", "lab_average", 25.0),
    ),
    (
        "export",
        "export-brainreg into a folder that holds other files",
        lambda t: _brainreg().export(_with_a_file(t), None, "a", "PIL", *([None] * 4)),
    ),
    (
        "file",
        "OME-Zarr with 3 channels",
        lambda t: io.read_volume(
            _zarr(t, np.zeros((3, 4, 5, 6), np.uint16), "czyx"), orientation="PIR"
        ),
    ),
    (
        "file",
        "OME-Zarr (not written here) without an orientation code",
        lambda t: io.read_volume(_zarr(t, np.zeros((4, 5, 6), np.uint16), "zyx")),
    ),
    (
        "file",
        "a plain TIFF opened with this plugin's napari reader (File > Open)",
        lambda t: _our_reader(_plain_tiff(t)),
    ),
    (
        "file",
        "another program's OME-Zarr opened with this plugin's napari reader",
        lambda t: _our_reader(_zarr(t, np.zeros((4, 5, 6), np.uint16), "zyx")),
    ),
    (
        "file",
        "OME-Zarr pyramid level that does not exist",
        lambda t: io.read_volume(
            _zarr(t, np.zeros((4, 5, 6), np.uint16), "zyx"), orientation="PIR", level=7
        ),
    ),
]


def _brainglobe():
    from napari_ccf_align.core.io import brainglobe

    return brainglobe


def _brainreg():
    from napari_ccf_align.core.results import brainreg

    return brainreg


def _with_a_file(tmp: Path) -> Path:
    (tmp / "mine").mkdir(exist_ok=True)
    (tmp / "mine" / "notes.txt").write_text("keep")
    return tmp / "mine"


def _damaged_bg(tmp: Path) -> Path:
    from napari_ccf_align.core.testing import brainglobe_folder
    from napari_ccf_align.core.testing.small_atlas import small_atlas

    folder = tmp / "bg"
    out = brainglobe_folder.write_brainglobe_atlas(folder, "allen_mouse_100um", small_atlas())
    (out / "structures.json").write_text(json.dumps([{"acronym": "x"}]))
    return folder


def _zarr(tmp: Path, data: np.ndarray, axes: str) -> Path:
    import zarr
    from ome_zarr.writer import write_multiscale

    path = tmp / f"{axes}.ome.zarr"
    kinds = {"c": "channel", "t": "time"}
    write_multiscale(
        [data],
        zarr.open_group(str(path), mode="w"),
        axes=[{"name": n, "type": kinds.get(n, "space")} for n in axes],
        coordinate_transformations=[[{"type": "scale", "scale": [1.0] * data.ndim}]],
    )
    return path


def _half_nan(tmp: Path, name: str) -> Path:
    data = np.ones((6, 7, 8), np.float32)
    data[:, :, :4] = np.nan
    image = sitk.GetImageFromArray(data)
    sitk.WriteImage(image, str(tmp / name))
    return tmp / name


def _one_inf(tmp: Path, name: str) -> Path:
    data = np.ones((6, 7, 8), np.float32)
    data[1, 2, 3] = np.inf
    sitk.WriteImage(sitk.GetImageFromArray(data), str(tmp / name))
    return tmp / name


def _zero_pixdim(tmp: Path) -> Path:
    import struct

    path = _nifti(tmp, name="nopixdim.nii")
    raw = bytearray(path.read_bytes())
    raw[76:108] = struct.pack("<8f", 1, 0, 0, 0, 1, 1, 1, 1)  # pixdim[1..3] = 0
    raw[252:256] = struct.pack("<hh", 0, 0)  # qform_code, sform_code: none
    path.write_bytes(bytes(raw))
    return path


def _noise() -> Volume:
    data = np.random.default_rng(0).random((30, 30, 30)).astype(np.float32)
    return Volume.from_array(data, 0.1, "RAS", name="noise")


def _dir(tmp: Path, name: str) -> Path:
    (tmp / name).mkdir(exist_ok=True)
    return tmp / name


def _tif(tmp: Path) -> Path:
    tifffile.imwrite(tmp / "s.tif", np.ones((4, 5, 6), np.uint16), photometric="minisblack")
    return tmp / "s.tif"


def _rgb_tif(tmp: Path) -> Path:
    tifffile.imwrite(tmp / "rgb.tif", np.ones((4, 5, 6, 3), np.uint8), photometric="rgb")
    return tmp / "rgb.tif"


def _empty_tif(tmp: Path) -> Path:
    tifffile.imwrite(tmp / "e.tif", np.zeros((0, 4, 4), np.uint8))
    return tmp / "e.tif"


def _oblique() -> Volume:
    a = np.eye(4)
    a[:3, :3] = frames.rotation_matrix((20, 10, 5)) * 0.1
    return Volume(np.ones((3, 4, 5), np.float32), a, "oblique")


def _state_json(**extra) -> str:
    return json.dumps({**AlignmentState().to_dict(), **extra})


def _vol2d() -> Volume:
    return Volume.from_array(np.random.default_rng(0).random((20, 20)), 0.1, "RA", name="section")


def _far() -> Volume:
    z, y, x = np.mgrid[:20, :20, :20]
    blob = np.exp(-((z - 10.0) ** 2 + (y - 9.0) ** 2 + (x - 11.0) ** 2) / 30.0).astype(np.float32)
    v = Volume.from_array(blob, 0.1, "RAS", name="far")  # tissue-like, but 80 mm away
    return v.transformed(np.array([[1, 0, 0, 80.0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]))


def _labels(tmp: Path) -> Path:
    return _sitk_file(tmp, np.ones((114, 80, 132), np.uint32), (100, 100, 100), "labels.nrrd")


def _loop() -> dict:
    return {
        "id": 1, "acronym": "a", "name": "a", "parent_structure_id": 2,
        "children": [{"id": 2, "acronym": "b", "name": "b", "parent_structure_id": 1}],
    }  # fmt: skip


def _mhd_pointing_at(tmp: Path, data: str) -> Path:
    return _write(
        tmp,
        "away.mhd",
        (
            "ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nElementType = MET_UCHAR\n"
            f"ElementDataFile = {data}\n"
        ).encode(),
    )


def _shifted():
    m = np.eye(4)
    m[0, 3] = 5.0
    return m.tolist()


def _nan_field(tmp: Path) -> Path:
    grid = Volume.grid((4, 5, 6), np.eye(4), "grid", "RAS")
    image = transforms.field_image(np.full((4, 5, 6, 3), np.nan, np.float32), grid)
    sitk.WriteImage(image, str(tmp / "nan_warp.nii.gz"), True)
    return tmp / "nan_warp.nii.gz"


def _short_gz(tmp: Path) -> Path:
    import gzip

    content = gzip.decompress(_nifti(tmp, compress=True, name="w.nii.gz").read_bytes())
    path = tmp / "short.nii.gz"
    path.write_bytes(gzip.compress(content[: int(len(content) * 0.6)]))
    return path


def _session(tmp: Path, text: str) -> Path:
    folder = _dir(tmp, "session")
    (folder / "session.json").write_text(text)
    return folder


def _with_file(tmp: Path) -> Path:
    folder = _dir(tmp, "mine")
    (folder / "notes.txt").write_text("mine")
    return folder


def _points(tmp: Path, text: str):
    return apply.read_points_csv(_write(tmp, "p.csv", text.encode()), _vol(), "index")


def _table() -> atlas.StructureTable:
    return atlas.StructureTable.from_graph(
        {"id": 997, "acronym": "root", "name": "root", "children": []}
    )


def table_rows(tmp: Path) -> list[tuple[str, str, str, str]]:
    """(class, input, error class, message) for every case; the message with ``tmp`` hidden."""
    rows = []
    for kind, what, call in CASES:
        try:
            call(tmp)
        except Exception as exc:  # the test checks the class; the table shows what happened
            rows.append((kind, what, type(exc).__name__, str(exc).replace(str(tmp), "<tmp>")))
        else:
            rows.append((kind, what, "(no error)", ""))
    return rows


def write_table(path: Path, tmp: Path) -> Path:
    """Write ``docs/reliability.md``'s table of bad inputs and their messages."""
    rows = table_rows(tmp)
    counts: dict[str, int] = {}
    for kind, *_ in rows:
        counts[kind] = counts.get(kind, 0) + 1
    lines = [
        "# Reliability: bad inputs and what the user is told",
        "",
        "Bad input at an entry point (a file, a widget value, a command-line flag, a session",
        "file) raises a `CcfAlignError` subclass with one sentence: what is wrong, and what to",
        "do. The table lists the inputs tried",
        f"({len(rows)} in all: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + "), each with the message it gives. It is written by `python -m tests.bad_inputs`",
        "from `tests/bad_inputs.py`, which `tests/test_bad_inputs.py` also runs. Widgets show",
        "these messages in the status line and as a napari notification; the command line",
        "prints them on stderr and exits with status 2. Anything else is a bug and says so:",
        "the command line prints `internal error: ...` with the path of a log holding the",
        "traceback and exits with status 1; napari shows the sentence in a notification and",
        "the traceback in its own error dialog.",
        "",
        "| class | input | error | message |",
        "| --- | --- | --- | --- |",
    ]
    for kind, what, cls, message in rows:
        lines.append(f"| {kind} | {what} | `{cls}` | {message.replace('|', '/')} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
        print("written to", write_table(out, Path(folder)))
