"""``python -m napari_ccf_align``: the same as the ``napari-ccf-align`` command."""

import sys

from napari_ccf_align.cli import main

sys.exit(main())
