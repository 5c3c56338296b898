"""Where a command's memory goes: runs ``napari-ccf-align ARGS`` in this process, samples its
RSS every 50 ms and, at every new 0.5 GB, records the stack (through faulthandler, from a
watchdog thread); prints each step with the innermost frames of ours, DIPY's or SimpleITK's.

Run: ``.venv/bin/python -m benchmarks.mem_where register brain.nii --out session``
(``/usr/bin/time -v`` in front gives the peak RSS as the kernel counts it).
"""

from __future__ import annotations

import faulthandler
import sys
import tempfile
import threading

import psutil

STEP_BYTES = 5e8


def main(args: list[str]) -> None:
    from napari_ccf_align.cli import main as cli

    process = psutil.Process()
    stop = threading.Event()
    steps: list[tuple[float, list[str]]] = []

    def watch() -> None:
        best = 0.0
        with tempfile.TemporaryFile("w+") as out:
            while not stop.wait(0.05):
                rss = process.memory_info().rss
                if rss <= best + STEP_BYTES:
                    continue
                best = rss
                out.seek(0)
                out.truncate()
                faulthandler.dump_traceback(out, all_threads=True)
                out.seek(0)
                ours = [
                    line.strip()
                    for line in out.read().splitlines()
                    if any(k in line for k in ("napari_ccf_align", "dipy", "SimpleITK"))
                ]
                steps.append((rss / 1e9, ours[:4]))

    threading.Thread(target=watch, daemon=True).start()
    try:
        cli(args)
    except SystemExit:
        pass
    stop.set()
    for gb, frames in steps:
        print(f"{gb:6.2f} GB: " + " <- ".join(frames))


if __name__ == "__main__":
    main(sys.argv[1:])
