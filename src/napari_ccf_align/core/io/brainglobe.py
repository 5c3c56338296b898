"""BrainGlobe atlases as the fixed side, through BrainGlobe's own atlas API.

``brainglobe-atlasapi`` downloads, caches, versions and checks every BrainGlobe atlas
(``allen_mouse_25um``, ``kim_mouse_10um``, ``demba_*``, ``whs_sd_rat_39um``, ...); this
module only turns what it holds into our :class:`~.atlas.Atlas`: the reference template,
the annotation, the hemisphere map and the structure tree, reoriented from BrainGlobe's
``asr`` (origin in the Anterior, Superior, Right corner: nibabel ``PIL``) into the RAS
world with index 0 at the world origin, as the Allen CCF path does.

The API is an optional dependency (``pip install 'napari-ccf-align[brainglobe]'``) and is
imported only here, when a BrainGlobe atlas is asked for.

Note that BrainGlobe labels its ``allen_mouse_*`` arrays ``asr`` while the Allen Institute
describes the same arrays as (AP, DV, ML) running Posterior, Inferior, Right (our Allen path,
``asl``): the two readings differ by a left-right mirror of a symmetric atlas. Each source is
read as it labels itself.
"""

from __future__ import annotations

import difflib
import os
import typing
from pathlib import Path

import numpy as np

from napari_ccf_align.core.errors import AtlasError, CcfAlignError, NetworkError
from napari_ccf_align.core.io.atlas import Atlas, StructureTable
from napari_ccf_align.core.volume import Volume

#: Where BrainGlobe atlases are looked for when no folder is given (else BrainGlobe's own
#: configured folder, ``~/.brainglobe`` by default).
ENV_BRAINGLOBE_DIR = "CCF_ALIGN_BRAINGLOBE_DIR"

#: The atlas name that means "the Allen CCF through our own download" (not BrainGlobe).
ALLEN = "allen"

INSTALL_HINT = "pip install 'napari-ccf-align[brainglobe]'"


def _api():
    try:
        from brainglobe_atlasapi import BrainGlobeAtlas
    except ImportError:
        raise AtlasError(
            f"BrainGlobe atlases need the BrainGlobe atlas API, which is not installed: run "
            f"{INSTALL_HINT}, or use the Allen CCF (--atlas allen) or your own template "
            "(--atlas-file)."
        ) from None
    return BrainGlobeAtlas


def brainglobe_dir(folder: str | os.PathLike | None = None) -> Path | None:
    """The BrainGlobe atlas folder to use: ``folder``, else ``$CCF_ALIGN_BRAINGLOBE_DIR``,
    else None (BrainGlobe's configured folder)."""
    folder = folder or os.environ.get(ENV_BRAINGLOBE_DIR)
    return Path(folder) if folder else None


def default_dir() -> Path | None:
    """Where BrainGlobe keeps its atlases on this machine (its configured folder)."""
    folder = brainglobe_dir()
    if folder is not None:
        return folder
    try:
        from brainglobe_atlasapi import config
    except ImportError:
        return None
    return Path(config.get_brainglobe_dir())


def installed_names(folder: str | os.PathLike | None = None) -> list[str]:
    """Names of the atlases installed in ``folder`` (default: :func:`default_dir`)."""
    folder = Path(folder) if folder else default_dir()
    if folder is None or not folder.is_dir():
        return []
    found = {
        p.name.rsplit("_v", 1)[0] for p in folder.glob("*_v*") if (p / "metadata.json").is_file()
    }
    return sorted(found)


def open_atlas(name: str, folder: str | os.PathLike | None = None, check_latest: bool = False):
    """The ``BrainGlobeAtlas`` called ``name``, downloaded by BrainGlobe when it is not in
    ``folder`` yet.

    Raises
    ------
    AtlasError
        The API is missing, or ``name`` is not a BrainGlobe atlas.
    NetworkError
        The atlas is not installed and BrainGlobe's server cannot be reached.
    """
    api = _api()
    folder = brainglobe_dir(folder)
    known = known_names()
    installed = folder is not None and any(Path(folder).glob(f"{name}_v*"))
    if known and name not in known and not installed:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (`brainglobe list`)"
        raise AtlasError(
            f"{name!r} is not a BrainGlobe atlas name{hint}: give one such as "
            "allen_mouse_25um, or --atlas allen for the Allen CCF."
        )
    kwargs = {"check_latest": check_latest}
    if folder is not None:
        kwargs["brainglobe_dir"] = folder
        kwargs["interm_download_dir"] = folder
    where = folder or "BrainGlobe's atlas folder"
    try:
        return api(name, **kwargs)
    except ValueError as exc:
        if "not a valid atlas name" in str(exc):
            raise AtlasError(
                f"{name!r} is not a BrainGlobe atlas name: `brainglobe list` shows them "
                "(e.g. allen_mouse_25um, kim_mouse_25um)."
            ) from None
        raise _damaged(name, where, exc) from None
    except (KeyError, TypeError) as exc:
        raise _damaged(name, where, exc) from None
    except FileExistsError:
        raise AtlasError(
            f"{where} holds several versions of {name}: keep one (delete the others' "
            "folders) and load it again."
        ) from None
    except (ConnectionError, OSError) as exc:
        if (
            isinstance(exc, FileNotFoundError)
            and folder is not None
            and any(Path(folder).glob(f"{name}_v*"))
        ):
            raise AtlasError(
                f"The BrainGlobe atlas {name} in {where} is incomplete ({exc}): delete its "
                "folder and install it again."
            ) from None
        raise NetworkError(
            f"The BrainGlobe atlas {name} is not installed in {where} and BrainGlobe's server "
            f"cannot be reached ({type(exc).__name__}): install it on a machine with network "
            f"(`brainglobe install -a {name}`) and copy the folder, or use --atlas-file."
        ) from None


def _damaged(name: str, where, exc: BaseException) -> AtlasError:
    return AtlasError(
        f"The BrainGlobe atlas {name} in {where} could not be read ({type(exc).__name__}: "
        f"{exc}): it is damaged; delete its folder and install it again."
    )


def known_names() -> tuple[str, ...]:
    """The atlas names the installed API knows (its ``AtlasName``), without network."""
    try:
        from brainglobe_atlasapi.atlas_name import AtlasName
    except ImportError:
        return ()
    return tuple(typing.get_args(AtlasName))


def _template_array(bg) -> np.ndarray:
    # brainglobe-atlasapi 3 renamed ``reference`` to ``template`` (and warns on the old name)
    if isinstance(getattr(type(bg), "template", None), property):
        return np.asarray(bg.template)
    return np.asarray(bg.reference)


def _ras(data: np.ndarray, spacing_mm, code: str, name: str, meta: dict) -> Volume:
    vol = Volume.from_array(data, spacing_mm, code, "brainglobe", name=name).reoriented("RAS")
    affine = vol.affine.copy()
    affine[:3, 3] = 0.0
    return Volume(vol.data, affine, name, "RAS", {**meta, "orientation": "RAS"})


def version_of(bg) -> str:
    """The atlas's version as BrainGlobe records it (e.g. ``"1.2"``)."""
    return str(bg.metadata.get("version", ""))


def load_brainglobe_atlas(
    name: str,
    folder: str | os.PathLike | None = None,
    annotation: bool = True,
    check_latest: bool = False,
) -> Atlas:
    """A BrainGlobe atlas in the RAS world, as an :class:`~.atlas.Atlas`.

    Parameters
    ----------
    name : str
        BrainGlobe atlas name, e.g. ``"allen_mouse_25um"``.
    folder : path-like, optional
        BrainGlobe atlas folder (see :func:`brainglobe_dir`).
    annotation : bool
        Also load the annotation, the hemisphere map and the structure tree.
    check_latest : bool
        Ask BrainGlobe's server whether a newer version exists (needs network).

    Returns
    -------
    Atlas
        Template, annotation (region ids as the atlas has them), hemispheres (1 left,
        2 right), structures; voxel size in mm from the atlas's resolution (µm), the
        version in ``version``.
    """
    bg = open_atlas(name, folder, check_latest)
    try:
        resolution = np.asarray(bg.resolution, float)  # µm, along the atlas's array axes
        code = str(getattr(bg, "orientation", None) or bg.metadata.get("orientation", "asr"))
        version = version_of(bg)
        meta = {
            "atlas": f"brainglobe:{name}",
            "brainglobe_name": name,
            "brainglobe_version": version,
            "resolution_um": float(resolution.min()),
        }
        spacing = resolution / 1000.0
        template = _ras(_template_array(bg), spacing, code, name, meta)
        labels = hemis = table = None
        if annotation:
            labels = _ras(np.asarray(bg.annotation), spacing, code, f"{name} annotation", meta)
            hemis = _ras(
                np.asarray(bg.hemispheres).astype(np.uint8),
                spacing,
                code,
                f"{name} hemispheres",
                meta,
            )
            table = StructureTable.from_brainglobe(bg.structures_list)
    except CcfAlignError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _damaged(name, brainglobe_dir(folder) or "BrainGlobe's folder", exc) from None
    return Atlas(float(resolution.min()), template, labels, table, hemis, name, version)


def is_brainglobe_name(name: str | None) -> bool:
    """Whether ``name`` asks for a BrainGlobe atlas (anything but ``"allen"``)."""
    return bool(name) and name != ALLEN
