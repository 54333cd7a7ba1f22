"""Test helpers shared by several test modules (import as ``from support import ...``).

They live here rather than in conftest.py: two conftest modules exist (tests/ and
tests/serving/), so ``from conftest import`` would pick whichever was imported first.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _CountingHandler(SimpleHTTPRequestHandler):
    """Serves files from the server's folder and counts each GET per path."""

    def do_GET(self) -> None:
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        del format, args


@dataclass
class FileServer:
    """A real HTTP server on 127.0.0.1 serving one folder; ``hits`` counts requests per path."""

    root: Path
    base_url: str
    hits: dict[str, int]

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@contextmanager
def serve_folder(root: Path) -> Iterator[FileServer]:
    """Serve ``root`` over HTTP on a free port of 127.0.0.1, in a thread."""
    handler = functools.partial(_CountingHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.hits = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(root, f"http://127.0.0.1:{server.server_port}", server.hits)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def tree_snapshot(root: Path) -> dict[str, bytes] | None:
    """Every file under ``root`` (relative path -> bytes), or None if ``root`` does not exist."""
    if not root.exists():
        return None
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
