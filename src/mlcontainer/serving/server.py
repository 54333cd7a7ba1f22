"""Run the app under gunicorn: options from Settings, JSON or text logs, multiprocess metrics."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

if TYPE_CHECKING:
    from mlcontainer.core.config import Settings
    from mlcontainer.serving.loading import LoadingApp

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
    """Drop a dead worker's live gauges and drift window from the merged metrics, and its
    ready mark."""
    from prometheus_client import multiprocess

    from mlcontainer.serving.drift import FILE_PREFIX
    from mlcontainer.serving.worker import READY_MARK

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
    folder = Path(server.app.metrics_dir)
    (folder / f"{READY_MARK}{worker.pid}").unlink(missing_ok=True)
    (folder / f"{FILE_PREFIX}{worker.pid}.npy").unlink(missing_ok=True)


def _post_fork(server: Any, worker: Any) -> None:
    """Share the cores among workers: cap BLAS/OpenMP pools at cores / (workers x threads).

    Without the cap every worker's OpenBLAS/OpenMP threads spin for all cores at once; on
    2 cores with 2 workers that made single-row latency 5x worse (see bench/README.md).
    """
    from threadpoolctl import threadpool_limits

    cfg = server.cfg
    limit = max(1, (os.cpu_count() or 1) // (cfg.workers * cfg.threads))
    threadpool_limits(limits=limit)
    # OpenMP (scikit-learn's gradient boosting) is loaded later, with the model: it reads this
    # then. Left at all cores on a busy machine, each tree of a one-row prediction waited for
    # a descheduled thread (~7 ms a tree: 0.7 s for the first prediction of 100 trees).
    os.environ.setdefault("OMP_NUM_THREADS", str(limit))


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

    def load(self) -> LoadingApp:
        from mlcontainer.serving.app import create_app
        from mlcontainer.serving.loading import LoadingApp

        build = partial(create_app, self.settings, metrics_dir=self.metrics_dir)
        return LoadingApp(
            build,
            failed=partial(_stop_worker, self.metrics_dir / LOAD_ERROR),
            loaded=partial(_mark_ready, self.metrics_dir),
        )


#: Exit status of a worker whose model failed to load: gunicorn's APP_LOAD_ERROR, on which
#: the master stops the server (a model that fails to load would fail in every worker).
APP_LOAD_ERROR = 4
#: Where that worker leaves its typed error for the master, in the metrics folder.
LOAD_ERROR = "load-error.json"


def _mark_ready(folder: Path) -> None:
    """Tell the workers still loading that this one can take the connections."""
    from mlcontainer.serving.worker import READY_MARK

    with contextlib.suppress(OSError):
        (folder / f"{READY_MARK}{os.getpid()}").touch()


def _stop_worker(report: Path, exc: BaseException) -> None:
    """Leave the load's error for the master, then end this worker with APP_LOAD_ERROR."""
    from mlcontainer.core.errors import MlcontainerError

    if isinstance(exc, MlcontainerError):
        said = {"type": type(exc).__name__, "message": exc.message, "setting": exc.setting}
        with contextlib.suppress(OSError):
            report.write_text(json.dumps(said))
    else:
        logging.getLogger(__name__).error("the model failed to load", exc_info=exc)
    os._exit(APP_LOAD_ERROR)  # from the loading thread: the whole worker, at once


def _load_error(report: Path, settings: Settings) -> Exception:
    """The typed error a worker left when its model failed to load."""
    from mlcontainer.core import errors

    try:
        given = json.loads(report.read_text())
    except (OSError, ValueError):
        return errors.ArtifactError(
            f"the model in {settings.model_dir} could not be loaded (the error is logged above)"
        )
    kinds = {k.__name__: k for k in (errors.ConfigError, errors.ArtifactError)}
    kind = kinds.get(given.get("type"), errors.ArtifactError)
    return kind(str(given.get("message")), setting=given.get("setting"))


def check_model(settings: Settings) -> None:
    """Refuse, before any port is bound, what can be told without loading the model: no
    folder, a bad manifest or file, a runtime that cannot serve it or is not installed.

    Nothing heavy is imported here (never onnxruntime: its import starts a native thread, and
    a forked worker's exit then waited for it until the graceful timeout killed it). The
    model itself is loaded by each worker, behind ``/ready`` (:mod:`.loading`).
    """
    from mlcontainer.inference.predictor import choose_runtime

    choose_runtime(settings.model_dir, settings.runtime)


def serve(settings: Settings) -> None:
    """Check the model folder, bind the port, then serve until SIGTERM or SIGINT.

    A folder that cannot be served (or not with ``settings.runtime``) raises a typed error
    before any port is bound (:func:`check_model`). The port is bound at once; each worker
    answers while it loads the model (``/ready`` 503 until it is loaded), and a model that
    fails to load stops the server with the worker's typed error, raised here.
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
    except SystemExit as exc:
        if os.getpid() == master and exc.code == APP_LOAD_ERROR:
            raise _load_error(metrics_dir / LOAD_ERROR, settings) from None
        raise
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
