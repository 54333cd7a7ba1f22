"""Run the app under gunicorn: options from Settings, JSON or text logs, multiprocess metrics."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

if TYPE_CHECKING:
    from flask import Flask

    from mlcontainer.core.config import Settings

#: Read by prometheus-client when it is first imported, in every worker.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TEXT_ACCESS_FORMAT = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'
#: Seconds an idle keep-alive connection stays open.
KEEPALIVE = 5
#: The worker class: gthread that hands a thread only requests that arrived whole.
WORKER_CLASS = "mlcontainer.serving.worker.Worker"


class JsonFormatter(logging.Formatter):
    """Format a log record as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class TextLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, also sending the app's own log records to the error log."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        app_log = logging.getLogger("mlcontainer")
        app_log.handlers = list(self.error_log.handlers)
        app_log.setLevel(self.error_log.level)
        app_log.propagate = False


class JsonLogger(TextLogger):
    """gunicorn's logger writing JSON lines: access records carry the request id."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "logger": "access",
            "pid": os.getpid(),
            "request_id": atoms.get("{x-request-id}o"),
            "remote": atoms["h"],
            "method": atoms["m"],
            "path": atoms["U"],
            "query": atoms["q"] or None,
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"],
            "duration_ms": round(atoms["D"] / 1000, 3),
            "user_agent": atoms["a"],
        }
        self.access_log.info(json.dumps(entry))


def _child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the merged metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _post_fork(server: Any, worker: Any) -> None:
    """Share the cores among workers: cap BLAS/OpenMP pools at cores / (workers x threads).

    Without the cap every worker's OpenBLAS/OpenMP threads spin for all cores at once; on
    2 cores with 2 workers that made single-row latency 5x worse (see bench/README.md).
    """
    from threadpoolctl import threadpool_limits

    cfg = server.cfg
    threadpool_limits(limits=max(1, (os.cpu_count() or 1) // (cfg.workers * cfg.threads)))


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """Translate Settings into gunicorn settings."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return {
        "bind": [f"{host}:{settings.port}"],
        "workers": settings.workers,
        "threads": settings.threads,
        # Requests are read whole in each worker's event loop before a thread sees them, so
        # slow clients cost no thread (serving/worker.py; figures in bench/README.md).
        "worker_class": WORKER_CLASS,
        "timeout": settings.timeout,
        "graceful_timeout": settings.graceful_timeout,
        "keepalive": KEEPALIVE,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": settings.log_level,
        "logger_class": JsonLogger if settings.log_format == "json" else TextLogger,
        "access_log_format": TEXT_ACCESS_FORMAT,
        "proc_name": "mlcontainer",
        "child_exit": _child_exit,
        "post_fork": _post_fork,
        # No runtime control socket: one less management surface, and no shared default path.
        "control_socket_disable": True,
    }


class _Server(BaseApplication):  # type: ignore[misc]
    """gunicorn application whose workers each build the app (and load the model) once."""

    def __init__(self, settings: Settings, metrics_dir: Path) -> None:
        self.settings = settings
        self.metrics_dir = metrics_dir
        #: Read by the worker: a body over it is refused by the app, so it is not waited for.
        self.body_limit = settings.max_body_bytes
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from mlcontainer.serving.app import create_app

        return create_app(self.settings, metrics_dir=self.metrics_dir)


def check_model(settings: Settings) -> None:
    """Load the model as a worker will, in a forked child that leaves with ``os._exit``.

    This process must never import onnxruntime: the import starts a native thread, and a
    forked worker's exit then waits for it forever (until the graceful timeout kills it:
    every shutdown took the whole ``--graceful-timeout``). A typed error of the child is
    raised here again, with its message and setting.
    """
    from mlcontainer.core import errors

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage cannot follow os._exit
        os.close(read_end)
        status = 0
        try:
            from mlcontainer.inference.predictor import load_predictor

            load_predictor(settings.model_dir, settings.runtime, threads=1)
        except errors.MlcontainerError as exc:
            said = {"type": type(exc).__name__, "message": exc.message, "setting": exc.setting}
            os.write(write_end, json.dumps(said).encode())
            status = 1
        except BaseException:
            logging.getLogger(__name__).exception("the model check failed")
            status = 2
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    if report:
        given = json.loads(report)
        kinds = {k.__name__: k for k in (errors.ConfigError, errors.ArtifactError)}
        kind = kinds.get(given["type"], errors.ArtifactError)
        raise kind(given["message"], setting=given["setting"])
    if os.waitstatus_to_exitcode(status) != 0:
        raise errors.ArtifactError(
            f"the model in {settings.model_dir} could not be loaded (the error is logged above)"
        )


def serve(settings: Settings) -> None:
    """Check that the model loads, then serve it with gunicorn until SIGTERM or SIGINT.

    A model that cannot be loaded (or not with ``settings.runtime``) raises a typed error
    here, before any port is bound.
    The check runs in a forked child (see :func:`check_model`); workers are forked after
    it and load the model themselves.
    """
    started = time.perf_counter()
    check_model(settings)
    if "prometheus_client" in sys.modules:  # pragma: no cover - guarded for embedding callers
        logging.getLogger(__name__).warning(
            "prometheus_client was imported before serve(): /metrics covers one worker only"
        )
    metrics_dir = Path(tempfile.mkdtemp(prefix="mlcontainer-metrics-"))
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    # The web stack (Flask, the pydantic request models) is imported once here: forked workers
    # inherit it and only build the app and their session (worker start -> ready 0.56 s ->
    # 0.12 s, bench/README.md). prometheus-client is left to the workers: imported here, it
    # would fix this process's metrics to the multiprocess mode for good.
    import mlcontainer.serving.api
    import mlcontainer.serving.errors  # noqa: F401

    logging.getLogger(__name__).debug("model checked in %.2fs", time.perf_counter() - started)
    master = os.getpid()
    try:
        _Server(settings, metrics_dir).run()
    finally:
        # Workers are forks that leave through SystemExit, up this very stack: only the
        # master may remove the folder, or a worker's exit breaks the others' /metrics files
        # (every request still in flight on them then failed with a 500).
        if os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            # The folder is gone: a later child of this process must not be sent to it.
            if previous is None:
                os.environ.pop(MULTIPROC_ENV, None)
            else:
                os.environ[MULTIPROC_ENV] = previous
