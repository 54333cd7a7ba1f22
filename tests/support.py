"""Test helpers shared by several test modules (import as ``from support import ...``).

They live here rather than in conftest.py: two conftest modules exist (tests/ and
tests/serving/), so ``from conftest import`` would pick whichever was imported first.
"""

from __future__ import annotations

import functools
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


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


def minimal_manifest(name: str, schema: Any, **fields: Any) -> Any:
    """A valid manifest with placeholder values, for tests that publish a set by hand."""
    from mlcontainer.core.artifacts import Manifest

    return Manifest.model_validate(
        {
            "name": name,
            "model": {"name": "m", "description": "a test model", "estimator": "x.Y"},
            "dataset": {
                "name": name,
                "source": "test",
                "rows": 0,
                "features": len(schema.features),
                "target": schema.target,
                "class_counts": {},
                "fingerprint": "0" * 64,
            },
            "schema": schema.to_dict(),
            "selection": {
                "model": "m",
                "metric": "accuracy",
                "cv": 2,
                "seed": 0,
                "test_size": 0.2,
                "train_rows": 0,
                "test_rows": 0,
                "fit_rows": 0,
            },
            "leaderboard": [],
            "metrics": {},
            "confusion_matrix": [],
            "versions": {},
            "created": "2026-12-01T00:00:00+00:00",
            **fields,
        }
    )


def save_set(
    folder: Path,
    pipeline: Any,
    schema: Any,
    name: str,
    *,
    onnx_bytes: bytes | None = None,
    runtime: Any = None,
    **fields: Any,
) -> Any:
    """Publish a model set for a pipeline fitted by hand (no report, no picture): as `train`
    writes it, with placeholder values where the test does not care."""
    import skops.io

    from mlcontainer.core.artifacts import MODEL_FILE, ONNX_FILE, publish

    files = {MODEL_FILE: skops.io.dumps(pipeline)}
    if onnx_bytes is not None:
        files[ONNX_FILE] = onnx_bytes
    manifest = minimal_manifest(name, schema, runtime=runtime, **fields)
    return publish(folder, manifest, files)


def options(**given: Any) -> Any:
    """TrainOptions for tests that call the comparison directly: one job, no time budget,
    unless given (``random_state`` is accepted for ``seed``)."""
    from mlcontainer.training.options import TrainOptions

    if "random_state" in given:
        given["seed"] = given.pop("random_state")
    if "models" in given:
        given["models"] = tuple(given["models"])
    given.setdefault("jobs", 1)
    given.setdefault("time_budget", None)
    return TrainOptions(**given)


#: The task of each built-in dataset (diabetes is the regression one).
BUILTIN_TASKS = {
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "digits": "classification",
    "diabetes": "regression",
    "penguins": "classification",
}


def candidate_pairs(*, baseline: bool = True) -> list[tuple[str, str]]:
    """(candidate, built-in dataset) for every candidate that serves the dataset's task."""
    from mlcontainer.training.search.models import BASELINE, MODELS

    return [
        (model, dataset)
        for dataset, task in BUILTIN_TASKS.items()
        for model, spec in MODELS.items()
        if task in spec.tasks and (baseline or model != BASELINE)
    ]


CHROMIUM = Path("/usr/bin/chromium")


def browser_missing() -> str | None:
    """Say what a browser test lacks here (Chromium, or Playwright to drive it), or None."""
    import importlib.util

    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent: `apt-get install -y chromium` (.ci/run does it)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed: `uv sync --group browser` (.ci/run does it)"
    return None


#: Marks a test that drives headless Chromium (skipped, saying why, where it cannot).
needs_chromium = pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve a Flask app on a free 127.0.0.1 port from a thread (for the page in a browser:
    the page is tested, not gunicorn); yields its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@contextmanager
def browser_page() -> Iterator[Any]:
    """A page of headless Chromium; leaving the block checks the page logged no console
    error and raised no uncaught exception (a broken image or script says so there)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page
            assert errors == [], errors
        finally:
            browser.close()


#: The types and compressions a copy of a CSV can be written in (see :func:`format_copy`).
FORMAT_SUFFIXES = (".xlsx", ".json", ".jsonl", ".csv.gz", ".csv.zst", ".jsonl.gz")


def format_copy(source: Path, path: Path, *, header: bool = True) -> Path:
    """Write the CSV ``source`` again as ``path`` says (:data:`FORMAT_SUFFIXES`).

    A compressed CSV is the file's own bytes compressed; the others are the table pandas
    reads (a file without a header line gets ``column_1`` ... as train names them).
    """
    import gzip

    import pandas as pd

    name = path.name.lower()
    if name.endswith((".csv.gz", ".csv.zst")):
        data = source.read_bytes()
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(data))
        else:
            from backports import zstd

            path.write_bytes(zstd.compress(data))
        return path
    frame = pd.read_csv(source, header=0 if header else None)
    if not header:
        frame.columns = [f"column_{j + 1}" for j in range(frame.shape[1])]
    if name.endswith(".xlsx"):
        frame.to_excel(path, index=False, header=header, engine="xlsxwriter")
    elif name.endswith(".json"):
        frame.to_json(path, orient="records", indent=1)
    else:
        text = frame.to_json(orient="records", lines=True)
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    return path


#: The user a root test process writes as while it needs a folder it cannot write to.
NOBODY = 65534


@contextmanager
def unwritable_folder() -> Iterator[Path]:
    """Yield a folder (mode 0555) this process cannot write to, in a traversable temporary
    parent. Root writes whatever the mode, so a root process acts as user nobody meanwhile
    (its effective uid only: the real uid stays 0, which lets it switch back)."""
    import os
    import shutil
    import tempfile

    parent = Path(tempfile.mkdtemp())
    parent.chmod(0o755)
    folder = parent / "read-only"
    folder.mkdir(mode=0o555)
    folder.chmod(0o555)  # whatever the umask
    as_root = os.geteuid() == 0
    try:
        if as_root:
            os.setegid(NOBODY)
            os.seteuid(NOBODY)
        try:
            yield folder
        finally:
            if as_root:
                os.seteuid(0)
                os.setegid(0)
    finally:
        shutil.rmtree(parent)


#: This engineer's port range on the shared machine.
PORTS = range(17000, 18000)


def free_port(start: int) -> int:
    for port in range(start, PORTS.stop):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


@dataclass
class Cluster:
    """A scheduler and its workers, each a process of its own."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_cluster(first_port: int, n_workers: int = 2) -> Cluster:
    """Start a Dask scheduler and ``n_workers`` one-thread workers on 127.0.0.1."""
    import distributed

    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port(first_port)
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    cluster = Cluster(
        address,
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **quiet,
        ),
    )
    # --no-nanny: each worker is one process, so killing it loses the worker for good.
    worker = [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
    for _ in range(n_workers):
        cluster.workers.append(subprocess.Popen([*worker, "--host", "127.0.0.1"], **quiet))
    try:
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
    except BaseException:
        cluster.stop()
        raise
    return cluster
