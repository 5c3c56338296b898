"""The command line: ``napari-ccf-align demo | register | apply | replay | batch |
export-brainreg | fetch-atlas``.

``parser`` holds the flags, ``commands`` turns them into the same core calls the widgets
make, ``terminal`` the progress bars, Ctrl-C and internal-error reports, ``demo`` the demo.
"""

from __future__ import annotations

import contextlib
import os
import sys

from napari_ccf_align.core.errors import Cancelled, CcfAlignError

#: Exit statuses: bad input (one sentence), an internal error (a bug: log written), Ctrl-C.
EXIT_BAD_INPUT = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Bad input ends with one sentence on stderr and exit status 2; a bug of ours with
    ``internal error: ...``, the traceback in a log file whose path it names, and
    status 1; Ctrl-C with status 130, nothing half-written kept.
    """
    try:
        from napari_ccf_align.cli.parser import build_parser, protect_ranges

        args = build_parser().parse_args(protect_ranges(sys.argv[1:] if argv is None else argv))
        if args.verbose:
            os.environ["CCF_ALIGN_VERBOSE"] = "1"  # DIPY's level lines, in the SyN child too
        else:
            from napari_ccf_align.core.runs.headless import quiet_dipy_log

            quiet_dipy_log()
        with _brainglobe_dir(getattr(args, "brainglobe_dir", None)):
            return args.func(args)
    except (Cancelled, KeyboardInterrupt):
        print("napari-ccf-align: interrupted; nothing half-written was kept.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CcfAlignError as exc:
        print(f"napari-ccf-align: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug: one line for the user, the traceback in a log
        from napari_ccf_align.cli.terminal import internal_error_sentence, write_crash_log

        log = write_crash_log(exc, argv)
        print(f"napari-ccf-align: {internal_error_sentence(exc, log)}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


@contextlib.contextmanager
def _brainglobe_dir(folder: str | None):
    """``--brainglobe-dir`` for every path of the command (sessions reload their atlas too)."""
    if not folder:
        yield
        return
    from napari_ccf_align.core.io.brainglobe import ENV_BRAINGLOBE_DIR

    before = os.environ.get(ENV_BRAINGLOBE_DIR)
    os.environ[ENV_BRAINGLOBE_DIR] = folder
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_BRAINGLOBE_DIR, None)
        else:
            os.environ[ENV_BRAINGLOBE_DIR] = before


if __name__ == "__main__":
    sys.exit(main())
