"""A real HTTP server on 127.0.0.1 serving ../shared/data laid out like the Allen server."""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LAYOUT = {
    "average_template/average_template_100.nrrd": "average_template_100.nrrd",
    "annotation/ccf_2017/annotation_100.nrrd": "annotation_100.nrrd",
    "structure_graph_download/1.json": "allen_structure_graph.json",
}


def build_mirror(shared: Path, root: Path) -> Path:
    """Copy the shared files into ``root`` with the Allen server's paths."""
    for rel, name in LAYOUT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared / name, root / rel)
    return root


STALL_S = 12.0
#: Set when a stalling response has finished its silence (cleared by each ``serve``).
stall_ended = threading.Event()


class _Handler(SimpleHTTPRequestHandler):
    mode = "ok"  # "ok", "corrupt" (bytes flipped), "slow" (trickle), "cut" (truncated),
    # "stall" (a tenth of the file, then silence for STALL_S seconds)
    requests: list[str]

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        self.requests.append(self.path)
        if self.mode == "ok":
            return super().do_GET()
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return self.send_error(404)
        data = path.read_bytes()
        if self.mode == "corrupt":
            data = bytes(b ^ 0x5A for b in data[:4096]) + data[4096:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.mode == "cut":
            self.wfile.write(data[: len(data) // 2])
            return
        if self.mode == "stall":
            self.wfile.write(data[: len(data) // 10])
            self.wfile.flush()
            time.sleep(STALL_S)  # bounded: the test server never hangs longer than this
            stall_ended.set()
            return
        if self.mode == "slow":
            for i in range(0, len(data), 1 << 14):
                self.wfile.write(data[i : i + (1 << 14)])
                time.sleep(0.05)
            return
        self.wfile.write(data)


@contextlib.contextmanager
def serve(root: Path, mode: str = "ok"):
    """Serve ``root`` on 127.0.0.1 in a thread; yield (base_url, list_of_requested_paths)."""
    requests: list[str] = []
    stall_ended.clear()
    handler = type("Handler", (_Handler,), {"mode": mode, "requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requests
    finally:
        server.shutdown()
        server.server_close()
