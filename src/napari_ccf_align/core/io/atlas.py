"""The Allen Mouse Brain Common Coordinate Framework v3: download, cache, verify, RAS.

Files come from the Allen Institute's download server through pooch into a
per-user cache folder (platformdirs), are checked against pinned SHA-256 values
where known (the hash of the first good download is recorded otherwise), and are
converted to the RAS world.

The raw Allen NRRD headers say ``space: left-posterior-superior`` with spacing
in µm. Both are wrong for our purposes: the arrays run (AP, DV, ML) with +index
towards Posterior, Inferior, Right (``PIR``), and the spacing is micrometres.
:func:`ras_volume` states the truth: permute the axes and flip DV and AP so that
+index runs Right, Anterior, Superior; spacing resolution / 1000 mm; origin 0.

Terms and citation: Allen Institute for Brain Science Terms of Use; cite Wang Q.
et al. (2020) "The Allen Mouse Brain Common Coordinate Framework: A 3D Reference
Atlas", Cell 181(4):936-953, doi:10.1016/j.cell.2020.04.007.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import platformdirs
import pooch
import requests
import SimpleITK as sitk

from napari_ccf_align.core import io, label_values
from napari_ccf_align.core.errors import (
    AtlasError,
    Cancelled,
    ChecksumError,
    MissingFileError,
    NetworkError,
    UnknownRegionError,
    UnreadableFileError,
    WriteError,
)
from napari_ccf_align.core.progress import (
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    ignore_progress,
)
from napari_ccf_align.core.volume import Volume

#: Resolutions the Allen Institute publishes, µm.
RESOLUTIONS_UM = (10, 25, 50, 100)
#: Raw grid sizes (AP, DV, ML) per resolution.
RAW_SHAPES = {
    10: (1320, 800, 1140),
    25: (528, 320, 456),
    50: (264, 160, 228),
    100: (132, 80, 114),
}
DEFAULT_BASE_URL = (
    "https://download.alleninstitute.org/informatics-archive/current-release/mouse_ccf/"
)
DEFAULT_STRUCTURES_URL = "https://api.brain-map.org/api/v2/structure_graph_download/1.json"
#: Environment variables that override the cache folder and the download server.
ENV_CACHE = "CCF_ALIGN_CACHE"
ENV_BASE_URL = "CCF_ALIGN_BASE_URL"
ENV_STRUCTURES_URL = "CCF_ALIGN_STRUCTURES_URL"

#: Pinned SHA-256 of files whose exact bytes are known.
KNOWN_SHA256 = {
    "average_template_100.nrrd": "6c24cae773a5cf256586b0384af0ac93ad68564d211c9bdcff4bee9acf07786a",
    "annotation_100.nrrd": "451e6a82f531d3db4b58056d024d3e2311703c2adc15cefa75e0268e7f0e69a4",
}
#: Known file sizes in bytes (used for the size shown before a download, and checked after it).
KNOWN_SIZES = {
    "average_template_100.nrrd": 749_680,
    "annotation_100.nrrd": 202_483,
    "average_template_25.nrrd": 32_998_960,
}
#: SHA-256 of the Allen CCF v3 structure ontology's content (:meth:`StructureTable.
#: content_sha256`: id, acronym, name, colour and parent of every region), the same for the
#: API's wrapped file and the bare tree; the file's own bytes differ between the two.
STRUCTURES_CONTENT_SHA256 = "7f2fbf8d63c829dc48e8bbbf0eec95b3965d9109d0e3e2527011b5d92f0a6b9b"
_HASHES_FILE = "recorded_sha256.json"
_DOWNLOAD_CHUNK = 1 << 16  # small enough for a smooth progress bar and a prompt cancel


# --------------------------------------------------------------------------- where files come from


@dataclass(frozen=True)
class RemoteFile:
    """One atlas file: its name in the cache, where to fetch it, what to expect."""

    name: str
    url: str
    sha256: str | None = None
    size: int | None = None


def check_resolution(resolution_um: int) -> int:
    """Return the resolution as int, or raise :class:`AtlasError` naming the choices."""
    try:
        res = int(resolution_um)
    except (TypeError, ValueError):
        res = -1
    if res not in RESOLUTIONS_UM or res != resolution_um:
        raise AtlasError(
            f"The Allen CCF is not published at {resolution_um!r} µm: choose 10, 25, 50 or 100 µm."
        )
    return res


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder the atlas files are kept in.

    ``override`` wins, then the ``CCF_ALIGN_CACHE`` environment variable, then the
    platform's user cache folder (e.g. ``~/.cache/napari-ccf-align/allen_ccf_v3``).
    """
    if override:
        return Path(override).expanduser()
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    return Path(platformdirs.user_cache_dir("napari-ccf-align")) / "allen_ccf_v3"


def remote_files(
    resolution_um: int,
    annotation: bool = True,
    structures: bool = True,
    base_url: str | None = None,
    structures_url: str | None = None,
) -> list[RemoteFile]:
    """The files one atlas load needs, with their URLs, known hashes and sizes.

    A ``base_url`` (argument, else ``CCF_ALIGN_BASE_URL``) replaces the Allen
    server with a mirror laid out the same way; the structure graph then comes
    from ``<base_url>structure_graph_download/1.json`` unless ``structures_url``
    (or ``CCF_ALIGN_STRUCTURES_URL``) names it.
    """
    res = check_resolution(resolution_um)
    base = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    base = base if base.endswith("/") else base + "/"
    graph = structures_url or os.environ.get(ENV_STRUCTURES_URL)
    if graph is None:
        graph = (
            DEFAULT_STRUCTURES_URL
            if base == DEFAULT_BASE_URL
            else f"{base}structure_graph_download/1.json"
        )
    names = [
        (f"average_template_{res}.nrrd", f"{base}average_template/average_template_{res}.nrrd")
    ]
    if annotation:
        names.append((f"annotation_{res}.nrrd", f"{base}annotation/ccf_2017/annotation_{res}.nrrd"))
    files = [RemoteFile(n, u, KNOWN_SHA256.get(n), KNOWN_SIZES.get(n)) for n, u in names]
    if structures:
        files.append(RemoteFile("structure_graph.json", graph))
    return files


def download_size(
    files: Iterable[RemoteFile], cache: Path, timeout: float = 5.0
) -> tuple[int, int]:
    """What still has to be downloaded for ``files``.

    Returns
    -------
    known_bytes : int
        Bytes of the missing files whose size is known (table or HTTP HEAD).
    unknown : int
        Number of missing files whose size could not be found out.
    """
    known, unknown = 0, 0
    for f in files:
        if (cache / f.name).is_file():
            continue
        size = f.size
        if size is None:
            try:
                r = requests.head(f.url, timeout=timeout, allow_redirects=True)
                size = int(r.headers.get("content-length", 0)) or None
            except requests.RequestException:
                size = None
        if size is None:
            unknown += 1
        else:
            known += size
    return known, unknown


# --------------------------------------------------------------------------- downloading


class _PoochProgress:
    """The progress-bar object pooch drives; reports events and honours cancellation."""

    def __init__(self, name: str, on_progress: ProgressCallback, cancel: CancelToken | None):
        self.name, self.on_progress, self.cancel = name, on_progress, cancel
        self.total = 0
        self.done = 0

    def update(self, n: int) -> None:
        if self.cancel is not None and self.cancel.cancelled:
            raise Cancelled(f"The download of {self.name} was cancelled; nothing was kept.")
        self.done += n
        self.on_progress(
            ProgressEvent(
                "download",
                min(self.done, self.total or self.done),
                self.total,
                f"Downloading {self.name}",
            )
        )

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        pass


def _recorded_hashes(cache: Path) -> dict[str, str]:
    try:
        return json.loads((cache / _HASHES_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _record_hash(
    cache: Path, name: str, path: Path, on_progress: ProgressCallback = ignore_progress
) -> None:
    """Record the hash of a file that has no published one (trust on first use), and say so."""
    hashes = _recorded_hashes(cache)
    if name in hashes or name in KNOWN_SHA256:
        return
    hashes[name] = io.sha256_of(path)
    with io.atomic_path(cache / _HASHES_FILE) as tmp:
        tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True))
    on_progress(
        ProgressEvent(
            "notice",
            message=(
                f"{name} has no published checksum: its SHA-256 {hashes[name][:12]}… is "
                "recorded and checked on every later use; to trust a new copy instead, run "
                f"napari-ccf-align fetch-atlas --forget {name}."
            ),
        )
    )


def _permit_as_umask(path: Path) -> None:
    """Give a downloaded file the permissions the user's umask gives new files (pooch's
    temporary file is private, 0600, so a lab's shared cache was unreadable to the group)."""
    wanted = 0o666 & ~io.current_umask()
    try:
        if path.stat().st_mode & 0o777 != wanted:
            os.chmod(path, wanted)
    except OSError:
        pass  # a cache on a file system without modes (or read-only): readable as it is


def _graph_url(files: Iterable[RemoteFile]) -> str:
    return next((f.url for f in files if f.name == "structure_graph.json"), "the mirror")


def forget(cache: str | os.PathLike | None, name: str) -> list[str]:
    """Reset the trust of one cached file: remove it and the hash recorded at its first use.

    The next load downloads it again and records the new file's hash (a pinned file is
    checked against its pin as always). Returns what was removed, e.g.
    ``["average_template_25.nrrd", "its recorded SHA-256"]``.

    Raises
    ------
    AtlasError
        If ``name`` is not a file this cache holds.
    """
    folder = cache_dir(cache)
    known = {f.name for r in RESOLUTIONS_UM for f in remote_files(r)}
    if name not in known:
        raise AtlasError(f"{name!r} is not an atlas file: name one of {', '.join(sorted(known))}.")
    removed = []
    if (folder / name).is_file():
        (folder / name).unlink()
        removed.append(name)
    hashes = _recorded_hashes(folder)
    if hashes.pop(name, None) is not None:
        with io.atomic_path(folder / _HASHES_FILE) as tmp:
            tmp.write_text(json.dumps(hashes, indent=1, sort_keys=True))
        removed.append("its recorded SHA-256")
    return removed


def _ensure_writable(cache: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    if not cache.is_dir() or not os.access(cache, os.W_OK | os.X_OK):
        raise WriteError(
            f"The cache folder {cache} is not writable: choose another cache folder (the widget's "
            f"field, the cache argument or {ENV_CACHE})."
        )


def fetch(
    files: Iterable[RemoteFile],
    cache: Path,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> dict[str, Path]:
    """Make sure every file is in ``cache``, downloading what is missing; return their paths.

    A cached file whose hash no longer matches the pinned or recorded one is
    downloaded again. A download that fails, is cancelled or has the wrong hash
    leaves nothing under the final name.

    Raises
    ------
    NetworkError, ChecksumError, WriteError, Cancelled
    """
    files = list(files)
    _ensure_writable(cache)
    recorded = _recorded_hashes(cache)
    paths = {}
    for f in files:
        if cancel is not None:
            cancel.raise_if_cancelled("The atlas download")
        known = f.sha256 or recorded.get(f.name)
        bar = _PoochProgress(f.name, on_progress, cancel)
        try:
            path = _retrieve_cancellable(f, known, cache, bar, cancel)
        except Cancelled:
            raise
        except requests.RequestException as exc:
            raise NetworkError(
                f"Could not download {f.url} ({type(exc).__name__}): check the network, or download "
                f"the file by hand and place it at {cache / f.name}."
            ) from None
        except ValueError as exc:
            if "hash" not in str(exc).lower():
                raise
            raise ChecksumError(
                f"{f.name} downloaded from {f.url} does not match its known SHA-256 and was "
                "discarded: try again later, or use another mirror."
            ) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS, errno.EPERM):
                raise io.write_error(cache, exc) from None
            raise
        path = Path(path)
        _permit_as_umask(path)
        if f.size is not None and path.stat().st_size != f.size:
            path.unlink(missing_ok=True)
            raise ChecksumError(
                f"{f.name} has {path.stat().st_size if path.exists() else 0} bytes instead of "
                f"{f.size} and was removed: load the atlas again to download it anew."
            )
        paths[f.name] = path
    return paths


#: Seconds to connect, and the longest silence between two reads, before a download fails.
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 5.0, 10.0
_POLL_S = 0.1  # how often the caller checks the cancel flag while a download runs
_CANCEL_GRACE_S = 0.5  # after a cancel, how long to let the download remove its partial file


def _retrieve_cancellable(
    f: RemoteFile, known: str | None, cache: Path, bar: _PoochProgress, cancel: CancelToken | None
) -> str:
    """``pooch.retrieve`` on a daemon thread, so a Cancel returns within ``_POLL_S`` seconds.

    A stalled server sends no bytes, so the progress callback (which checks the
    cancel flag between reads) is not called; the caller checks the flag while it
    waits instead. The abandoned download stops at its next read (the callback
    raises) or at the read timeout, and pooch removes its temporary file.
    """
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["path"] = pooch.retrieve(
                f.url,
                known_hash=f"sha256:{known}" if known else None,
                fname=f.name,
                path=cache,
                downloader=pooch.HTTPDownloader(
                    progressbar=bar,
                    chunk_size=_DOWNLOAD_CHUNK,
                    timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                ),
            )
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"download {f.name}", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(_POLL_S)
        if cancel is not None and cancel.cancelled and thread.is_alive():
            thread.join(_CANCEL_GRACE_S)  # a live download stops at its next read and cleans up
            raise Cancelled(f"The download of {f.name} was cancelled; nothing was kept.")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["path"]


# --------------------------------------------------------------------------- RAS conversion


def ras_volume(raw_c_order: np.ndarray, resolution_um: int, name: str) -> Volume:
    """The RAS-aligned atlas volume from a raw Allen array as SimpleITK or numpy C order reads it.

    C order reverses the NRRD's (AP, DV, ML) axes, so ``raw_c_order`` runs
    (ML, DV, AP) = Right, Inferior, Posterior (``RIP``). The result's axes run
    (R, A, S) with spacing ``resolution_um / 1000`` mm and index 0 at the origin.
    """
    res = check_resolution(resolution_um)
    expected = RAW_SHAPES[res][::-1]
    if raw_c_order.shape != expected:
        raise ChecksumError(
            f"{name} has grid {raw_c_order.shape[::-1]} (AP, DV, ML) but the {res} µm atlas is "
            f"{RAW_SHAPES[res]}: the file is not the Allen CCF at {res} µm; pick the right file."
        )
    _check_kind(raw_c_order, name)
    ras = Volume.from_array(raw_c_order, res / 1000.0, "RIP", name=name).reoriented("RAS")
    affine = ras.affine.copy()
    affine[:3, 3] = 0.0
    meta = {"atlas": "allen_mouse_ccf_v3", "resolution_um": res, "orientation": "RAS"}
    return Volume(ras.data, affine, name, "RAS", meta)


def _check_kind(data: np.ndarray, name: str) -> None:
    """A template holds grey values (16-bit or float), an annotation region ids (integers)."""
    if name.startswith("annotation") and data.dtype.kind not in "iu":
        raise ChecksumError(
            f"{name} holds {data.dtype} values, not the integer region ids of an annotation: the "
            "file is not the Allen annotation; pick the right file."
        )
    if name.startswith("average_template") and data.dtype.itemsize > 2 and data.dtype.kind in "iu":
        raise ChecksumError(
            f"{name} holds {data.dtype} values, like a label volume, not the template's grey "
            "values: the file is not the Allen template; pick the right file."
        )


def read_allen_nrrd(
    path: str | os.PathLike, resolution_um: int | None = None, name: str | None = None
) -> Volume:
    """Read a raw Allen template or annotation NRRD, stating its true orientation and units.

    Parameters
    ----------
    path : path-like
        ``average_template_{res}.nrrd`` or ``annotation_{res}.nrrd`` as published.
    resolution_um : int, optional
        10, 25, 50 or 100; default from the header's spacing (given in µm).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"No file at {path}: check the path, or pick the file again.")
    try:
        image = sitk.ReadImage(str(path))
    except (RuntimeError, OSError, EOFError) as exc:
        raise UnreadableFileError(
            f"{path.name} could not be read (corrupt or truncated: {type(exc).__name__}): delete "
            "it and load the atlas again, or pick an intact copy."
        ) from None
    if resolution_um is None:
        spacing = image.GetSpacing()
        resolution_um = round(spacing[0]) if len(set(spacing)) == 1 else -1
        if resolution_um not in RESOLUTIONS_UM:
            raise AtlasError(
                f"{path.name} has spacing {spacing}, which is not an Allen CCF resolution: give "
                "the resolution (10, 25, 50 or 100 µm)."
            )
    return ras_volume(sitk.GetArrayFromImage(image), resolution_um, name or path.name.split(".")[0])


# --------------------------------------------------------------------------- structures


@dataclass(frozen=True)
class Structure:
    """One region of the Allen ontology."""

    id: int
    acronym: str
    name: str
    color: tuple[int, int, int]
    parent: int | None
    depth: int


def _check_no_parent_cycle(by_id: Mapping[int, Structure]) -> None:
    """Refuse a graph whose parent links loop (walking up would never end)."""
    for sid in by_id:
        seen, parent = {sid}, by_id[sid].parent
        while parent is not None and parent in by_id:
            if parent in seen:
                raise UnreadableFileError(
                    f"The structure graph's parent links loop through region {parent}: it is "
                    "damaged; download it again."
                )
            seen.add(parent)
            parent = by_id[parent].parent


@dataclass(frozen=True)
class StructureTable:
    """The Allen structure ontology: regions by id, with ancestry.

    Examples
    --------
    >>> t = StructureTable.from_graph({"id": 997, "acronym": "root", "name": "root",
    ...     "color_hex_triplet": "FFFFFF", "parent_structure_id": None,
    ...     "children": [{"id": 8, "acronym": "grey", "name": "Basic cell groups",
    ...                   "color_hex_triplet": "BFDAE3", "parent_structure_id": 997}]})
    >>> t.ancestors(8)
    [997]
    """

    by_id: Mapping[int, Structure]
    children: Mapping[int, tuple[int, ...]] = field(repr=False)

    @classmethod
    def from_graph(cls, graph) -> StructureTable:
        """From the structure graph: the API's ``{"msg": [root]}`` or a bare root node."""
        if isinstance(graph, dict) and "msg" in graph:
            roots = graph["msg"]
        elif isinstance(graph, list):
            roots = graph
        else:
            roots = [graph]
        by_id, children = {}, {}
        stack = [(node, 0, None) for node in roots]
        while stack:
            node, depth, nested_in = stack.pop()
            if not isinstance(node, dict) or "id" not in node:
                raise UnreadableFileError(
                    "The structure graph has a node without an id: it is not an Allen structure "
                    "graph; download it again."
                )
            if int(node["id"]) in by_id:
                raise UnreadableFileError(
                    f"The structure graph lists region {node['id']} twice (a cycle or a "
                    "duplicate): it is damaged; download it again."
                )
            hexcol = str(node.get("color_hex_triplet") or "FFFFFF")
            sid = int(node["id"])
            parent = node.get("parent_structure_id", nested_in)  # (or where it is nested)
            by_id[sid] = Structure(
                sid,
                str(node.get("acronym", "")),
                str(node.get("name", "")),
                tuple(int(hexcol[i : i + 2], 16) for i in (0, 2, 4)),
                int(parent) if parent is not None else None,
                depth,
            )
            kids = node.get("children") or []
            children[sid] = tuple(int(k["id"]) for k in kids)
            stack.extend((k, depth + 1, sid) for k in kids)
        if not by_id:
            raise UnreadableFileError("The structure graph holds no regions: download it again.")
        _check_no_parent_cycle(by_id)
        return cls(by_id, children)

    @classmethod
    def from_brainglobe(cls, structures: Iterable[Mapping]) -> StructureTable:
        """From a BrainGlobe atlas's structure list (``structures.json``): each entry's
        ``id``, ``acronym``, ``name``, ``rgb_triplet`` and ``structure_id_path`` (root first)."""
        by_id: dict[int, Structure] = {}
        children: dict[int, list[int]] = {}
        for entry in structures:
            try:
                sid = int(entry["id"])
                path = [int(i) for i in entry.get("structure_id_path") or [sid]]
                color = tuple(int(c) for c in (entry.get("rgb_triplet") or (255, 255, 255))[:3])
            except (KeyError, TypeError, ValueError):
                raise UnreadableFileError(
                    "The BrainGlobe atlas's structure list has an entry without a numeric id or "
                    "path: the atlas folder is damaged; install the atlas again."
                ) from None
            if sid in by_id:
                raise UnreadableFileError(
                    f"The BrainGlobe atlas lists region {sid} twice: the atlas folder is "
                    "damaged; install the atlas again."
                )
            parent = path[-2] if len(path) > 1 and path[-1] == sid else None
            by_id[sid] = Structure(
                sid,
                str(entry.get("acronym", "")),
                str(entry.get("name", "")),
                color,  # type: ignore[arg-type]
                parent,
                len(path) - 1,
            )
            if parent is not None:
                children.setdefault(parent, []).append(sid)
        if not by_id:
            raise UnreadableFileError(
                "The BrainGlobe atlas lists no regions: install the atlas again."
            )
        _check_no_parent_cycle(by_id)
        return cls(by_id, {k: tuple(v) for k, v in children.items()})

    def to_brainglobe(self) -> list[dict]:
        """The table as a BrainGlobe ``structures.json`` list (inverse of
        :meth:`from_brainglobe`)."""
        out = []
        for s in sorted(self.by_id.values(), key=lambda s: (s.depth, s.id)):
            path = [*reversed(self.ancestors(s.id)), s.id]
            out.append(
                {
                    "id": s.id,
                    "acronym": s.acronym,
                    "name": s.name,
                    "structure_id_path": path,
                    "rgb_triplet": list(s.color),
                }
            )
        return out

    def content_sha256(self) -> str:
        """SHA-256 of what the table holds (each region's id, acronym, name, colour and
        parent), the same whether the graph came bare or wrapped as the API serves it."""
        lines = [
            f"{s.id}\t{s.acronym}\t{s.name}\t{bytes(s.color).hex()}\t{s.parent}"
            for s in sorted(self.by_id.values(), key=lambda s: s.id)
        ]
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> StructureTable:
        """Read a structure graph JSON file."""
        try:
            return cls.from_graph(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UnreadableFileError(
                f"{Path(path).name} is not an Allen structure graph ({type(exc).__name__}): "
                "delete it and load the atlas again."
            ) from None

    def __getitem__(self, sid: int) -> Structure:
        try:
            return self.by_id[int(sid)]
        except (KeyError, TypeError, ValueError):
            raise UnknownRegionError(
                f"Region {sid!r} is not in the Allen structure ontology: give a region id such "
                "as 315 (Isocortex)."
            ) from None

    def __contains__(self, sid: object) -> bool:
        return sid in self.by_id

    def __len__(self) -> int:
        return len(self.by_id)

    def by_acronym(self, acronym: str) -> Structure:
        """The region with this acronym (e.g. ``"MOB"``)."""
        for s in self.by_id.values():
            if s.acronym == acronym:
                return s
        raise UnknownRegionError(
            f"No region has the acronym {acronym!r}: acronyms are case-sensitive, e.g. 'MOB', "
            "'CA1', 'Isocortex'."
        )

    def ancestors(self, sid: int) -> list[int]:
        """Ids from the parent up to the root."""
        out, parent = [], self[sid].parent
        while parent is not None and parent in self.by_id:
            out.append(parent)
            parent = self.by_id[parent].parent
        return out

    def descendants(self, sid: int, include_self: bool = True) -> set[int]:
        """Ids of every region below ``sid`` (and ``sid`` itself by default)."""
        out, stack = set(), [int(sid)]
        while stack:
            s = stack.pop()
            out.add(s)
            stack.extend(self.children.get(s, ()))
        if not include_self:
            out.discard(int(sid))
        return out

    def contains(self, ancestor: int, sid: int) -> bool:
        """Whether ``sid`` is ``ancestor`` or lies below it."""
        return int(ancestor) == int(sid) or int(ancestor) in self.ancestors(sid)

    def region_of(self, sid: int, candidates: Iterable[int]) -> int | None:
        """The first of ``candidates`` that contains ``sid`` (e.g. its major region)."""
        for c in candidates:
            if sid in self and self.contains(c, sid):
                return int(c)
        return None

    def at_depth(self, ids: np.ndarray, depth: int) -> np.ndarray:
        """Each Allen id replaced by its ancestor at ``depth`` of the ontology, or by itself
        when it lies above (0 and unknown ids stay): e.g. cortical layers become their area
        at depth 6 (MOp1 -> MO), so that outlines at 100 µm are not every voxel."""
        return label_values.relabel(ids, lambda sid: self._ancestor_at(sid, depth))

    def _ancestor_at(self, sid: int, depth: int) -> int:
        if sid not in self.by_id:
            return sid
        chain = [sid, *self.ancestors(sid)]
        return next((c for c in chain if self.by_id[c].depth <= depth), sid)

    def mask(self, labels: np.ndarray, sid: int) -> np.ndarray:
        """Boolean mask of ``labels`` voxels in region ``sid`` or any region below it."""
        return np.isin(labels, np.fromiter(self.descendants(sid), dtype=labels.dtype))

    def colors(
        self, ids: Iterable[int] | None = None
    ) -> dict[int, tuple[float, float, float, float]]:
        """RGBA colours in [0, 1] per id (Allen colours)."""
        ids = self.by_id if ids is None else ids
        return {
            int(i): (*(c / 255.0 for c in self.by_id[int(i)].color), 1.0)
            for i in ids
            if int(i) in self.by_id
        }


def compact_labels(labels: Volume) -> tuple[Volume, np.ndarray]:
    """Renumber label ids as 0..n (0 stays background), with the table to map back.

    Allen structure ids reach 614,454,277; small consecutive values display fast
    in napari and take 16 bits instead of 32.

    Returns
    -------
    compact : Volume
        Same grid; value k stands for structure ``ids[k]``.
    ids : numpy.ndarray
        Sorted structure ids, ``ids[0] == 0``.
    """
    if "structure_ids" in labels.metadata:  # renumbered already: value k is ids[k]
        return labels, np.asarray(labels.metadata["structure_ids"])
    ids = np.union1d([0], label_values.distinct(labels.data))
    dtype = np.uint16 if len(ids) < 2**16 else np.uint32
    compact = label_values.positions(labels.data, ids).astype(dtype)
    meta = {**labels.metadata, "structure_ids": ids}
    return Volume(compact, labels.affine, labels.name, labels.world_axes, meta), ids


def coarser_labels(labels: Volume, structures: StructureTable, depth: int) -> Volume:
    """Labels renumbered by :func:`compact_labels`, each region replaced by its ancestor at
    ``depth`` of the ontology (see :meth:`StructureTable.at_depth`), still renumbered.

    Works on the table of ids, not on the voxels: one lookup per voxel.
    """
    ids = labels.metadata.get("structure_ids")
    if ids is None:
        return compact_labels(labels.with_data(structures.at_depth(labels.data, depth)))[0]
    coarse = structures.at_depth(np.asarray(ids), depth)
    new_ids = np.union1d([0], coarse)
    table = label_values.positions(coarse, new_ids).astype(np.asarray(labels.data).dtype)
    meta = {**labels.metadata, "structure_ids": new_ids}
    return Volume(
        table[np.asarray(labels.data)], labels.affine, labels.name, labels.world_axes, meta
    )


def structure_id_volume(labels: Volume) -> Volume:
    """Allen structure ids again from labels renumbered by :func:`compact_labels`.

    Labels that were never renumbered (no ``structure_ids`` in their metadata) are
    returned as they are.
    """
    ids = labels.metadata.get("structure_ids")
    if ids is None:
        return labels
    ids = np.asarray(ids)
    meta = {k: v for k, v in labels.metadata.items() if k != "structure_ids"}
    data = ids[np.asarray(labels.data)].astype(np.uint32)
    return Volume(data, labels.affine, labels.name, labels.world_axes, meta)


# --------------------------------------------------------------------------- the whole atlas


@dataclass(frozen=True)
class Atlas:
    """A RAS-aligned atlas at one resolution: template, annotation, structures (the Allen
    CCF by default; :mod:`.brainglobe` gives any BrainGlobe atlas in the same shape)."""

    resolution_um: float
    template: Volume
    annotation: Volume | None = None
    structures: StructureTable | None = None
    hemispheres: Volume | None = None  # 1 left, 2 right; None: split at the midline
    name: str = "allen_mouse_ccf_v3"
    version: str = ""


def load_atlas(
    resolution_um: int = 25,
    *,
    annotation: bool = True,
    structures: bool | None = None,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
    structures_url: str | None = None,
    on_progress: ProgressCallback = ignore_progress,
    cancel: CancelToken | None = None,
) -> Atlas:
    """Download (once) and load the Allen CCF v3 in the RAS world.

    Parameters
    ----------
    resolution_um : {10, 25, 50, 100}
        Voxel size, µm.
    annotation : bool
        Also load the 2017 annotation (region ids on the same grid).
    structures : bool, optional
        Also load the structure ontology; default: when ``annotation`` is.
    cache : path-like, optional
        Cache folder (see :func:`cache_dir`).
    base_url, structures_url : str, optional
        Mirror of the Allen download server (see :func:`remote_files`).
    on_progress : callable
        Receives :class:`ProgressEvent` during downloads.
    cancel : CancelToken, optional
        Cancels a download in progress.
    """
    res = check_resolution(resolution_um)
    structures = annotation if structures is None else structures
    folder = cache_dir(cache)
    files = remote_files(res, annotation, structures, base_url, structures_url)
    paths = fetch(files, folder, on_progress, cancel)
    volumes = {}
    for f in files:
        if not f.name.endswith(".nrrd"):
            continue
        try:
            volumes[f.name] = read_allen_nrrd(paths[f.name], res, f.name.split(".")[0])
        except (UnreadableFileError, ChecksumError) as exc:
            paths[f.name].unlink(missing_ok=True)
            raise type(exc)(f"{exc} (The cached copy at {paths[f.name]} was removed.)") from None
        _record_hash(folder, f.name, paths[f.name], on_progress)
    table = None
    if structures:
        graph = paths["structure_graph.json"]
        try:
            table = StructureTable.from_file(graph)
        except UnreadableFileError as exc:
            graph.unlink(missing_ok=True)
            raise UnreadableFileError(f"{exc} (The cached copy at {graph} was removed.)") from None
        if table.content_sha256() != STRUCTURES_CONTENT_SHA256:
            graph.unlink(missing_ok=True)
            raise ChecksumError(
                f"The structure graph from {_graph_url(files)} is not the Allen CCF v3 ontology "
                "this version knows (its regions' ids, names, colours or parents differ), so "
                f"its names cannot be trusted; the cached copy at {graph} was removed: load the "
                "atlas again, from the Allen server or another mirror."
            )
    return Atlas(
        res,
        volumes[f"average_template_{res}.nrrd"],
        volumes.get(f"annotation_{res}.nrrd"),
        table,
    )


def load_atlas_files(
    template: str | os.PathLike,
    annotation: str | os.PathLike | None = None,
    structures: str | os.PathLike | None = None,
    resolution_um: int | None = None,
) -> Atlas:
    """Load the atlas from files the user already has (machines without network)."""
    t = read_allen_nrrd(template, resolution_um, "average_template")
    res = t.metadata["resolution_um"]
    a = read_allen_nrrd(annotation, res, "annotation") if annotation else None
    s = StructureTable.from_file(structures) if structures else None
    return Atlas(res, t, a, s)
