"""Where numba keeps the compiled kernels: a writable folder, found before numba needs one.

Numba caches a kernel beside its module or in the user's cache folder and, when neither can
be written (a read-only install and no writable home), fails at import with "no locator
available". A temporary folder is chosen then, so every command still runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ENV = "NUMBA_CACHE_DIR"


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be written, or made in its nearest existing parent."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


def fallback_dir(package_dir: Path, user_cache: Path) -> Path | None:
    """A temporary cache folder when numba would find none of its own, else None.

    Parameters
    ----------
    package_dir : Path
        Folder of the modules that hold the kernels (numba's first choice).
    user_cache : Path
        The user's numba cache folder (its second).
    """
    if os.environ.get(ENV):
        return None
    if _writable(package_dir / "__pycache__") or _writable(user_cache):
        return None
    return Path(tempfile.gettempdir()) / f"napari-ccf-align-numba-{os.getuid()}"


def ensure_writable_cache() -> None:
    """Point numba at a temporary folder if it would find no writable cache folder."""
    import platformdirs

    folder = fallback_dir(Path(__file__).parent, Path(platformdirs.user_cache_dir("numba")))
    if folder is not None:
        os.environ[ENV] = str(folder)
        numba = sys.modules.get("numba")
        if numba is not None:  # imported already (by another package): it read the variable
            numba.config.CACHE_DIR = str(folder)
