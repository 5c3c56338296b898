"""A session is checked as a whole on load: a tampered or damaged file is named, not used."""

from __future__ import annotations

import gzip
import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from napari_ccf_align.core.errors import UnreadableFileError
from napari_ccf_align.core.io import transforms
from napari_ccf_align.core.runs import session

from .test_session import saved  # noqa: F401  (the registered session fixture)


def _copy(saved, tmp_path, drop_hashes=False):  # noqa: F811
    _, folder, *_ = saved
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    if drop_hashes:  # as an older session, or a tamperer who also edits the JSON
        data = json.loads((target / "session.json").read_text())
        data.pop("sha256", None)
        (target / "session.json").write_text(json.dumps(data))
    return target


def _edit_json(folder, change):
    data = json.loads((folder / "session.json").read_text())
    change(data)
    (folder / "session.json").write_text(json.dumps(data))


def test_an_untouched_copy_loads_and_its_hashes_were_recorded(saved, tmp_path):  # noqa: F811
    target = _copy(saved, tmp_path)
    data = json.loads((target / "session.json").read_text())
    assert {"rigid.tfm", "syn_warp.nii.gz", "syn_inverse_warp.nii.gz"} <= set(data["sha256"])
    loaded, _ = session.load(target)
    assert loaded.result.deformable


def test_a_changed_transform_file_is_named_by_its_hash(saved, tmp_path):  # noqa: F811
    target = _copy(saved, tmp_path)
    sitk.WriteTransform(sitk.Euler3DTransform(), str(target / "rigid.tfm"))  # identity
    with pytest.raises(UnreadableFileError, match=r"rigid.tfm was changed since it was saved"):
        session.load(target)


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (lambda t: sitk.WriteTransform(sitk.Euler3DTransform(), str(t)), "disagree"),
        (lambda t: sitk.WriteTransform(sitk.Euler2DTransform(), str(t)), "2D transform"),
        (
            lambda t: sitk.WriteTransform(sitk.TranslationTransform(3, (1e300, 0, 0)), str(t)),
            "not a usable transform",
        ),
        (
            lambda t: sitk.WriteTransform(sitk.ScaleTransform(3, (0.0, 1.0, 1.0)), str(t)),
            "not a usable transform",
        ),
    ],
)
def test_a_tampered_transform_is_refused_even_without_hashes(saved, tmp_path, tamper, says):  # noqa: F811
    target = _copy(saved, tmp_path, drop_hashes=True)
    tamper(target / "rigid.tfm")
    with pytest.raises(UnreadableFileError, match=says):
        session.load(target)


def test_a_shift_put_only_into_the_json_is_refused(saved, tmp_path):  # noqa: F811
    target = _copy(saved, tmp_path, drop_hashes=True)
    _edit_json(target, lambda d: d["result"]["syn"]["matrix"][0].__setitem__(3, 5.0))
    with pytest.raises(UnreadableFileError, match=r"rigid.tfm and the matrix in session.json"):
        session.load(target)


def _rewrite_field(folder, name, change):
    field, grid = transforms.read_field(folder / name)
    field, grid = change(field, grid)
    # written by plain SimpleITK, as another tool or a tamperer would
    sitk.WriteImage(transforms.field_image(field, grid), str(folder / name), True)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda f, g: (np.full_like(f, np.nan), g), "NaN or infinite"),
        (lambda f, g: (np.full_like(f, 1e30), g), "more than the"),
        (lambda f, g: (f[:-1], g.cropped(((0, g.shape[0] - 1), (0, g.shape[1]), (0, g.shape[2])))),
         "grid session.json records"),
    ],
)  # fmt: skip
def test_a_damaged_field_is_refused_not_replaced_by_the_linear_map(saved, tmp_path, change, says):  # noqa: F811
    target = _copy(saved, tmp_path, drop_hashes=True)
    _rewrite_field(target, "syn_warp.nii.gz", change)
    with pytest.raises(UnreadableFileError, match=f"syn_warp.nii.gz .*{says}|{says}"):
        session.load(target)


def test_a_field_short_inside_its_gzip_stream_is_refused(saved, tmp_path):  # noqa: F811
    target = _copy(saved, tmp_path, drop_hashes=True)
    path = target / "syn_inverse_warp.nii.gz"
    with gzip.open(path, "rb") as f:
        content = f.read()
    with gzip.open(path, "wb") as f:
        f.write(content[: int(len(content) * 0.6)])
    with pytest.raises(UnreadableFileError, match=r"syn_inverse_warp.nii.gz is truncated"):
        session.load(target)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: d["result"].__setitem__("kind", "bogus"), "unknown kind 'bogus'"),
        (lambda d: d["moving"].__setitem__("embedded", "../../etc/passwd"), "not a file inside"),
    ],
)
def test_an_edited_json_is_refused(saved, tmp_path, change, says):  # noqa: F811
    target = _copy(saved, tmp_path, drop_hashes=True)
    _edit_json(target, change)
    with pytest.raises(UnreadableFileError, match=says):
        session.load(target)
