"""Settings from ``MLCONTAINER_*`` environment variables: the only reader of ``os.environ``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from mlcontainer.core.errors import ConfigError

ENV_PREFIX = "MLCONTAINER_"
LOG_FORMATS = ("text", "json")
#: Which engine computes predictions: ONNX when the model folder has a verified model.onnx.
RUNTIMES = ("auto", "onnx", "sklearn")
SCHEDULER_SCHEMES = ("tcp", "tls")
#: The most rows a worker's drift window may keep (2 bytes per feature and row).
MAX_DRIFT_WINDOW = 1_000_000
_SCHEDULER = re.compile(r"^(tcp|tls)://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


def check_scheduler(address: str | None) -> str | None:
    """Return a Dask scheduler address (``tcp://HOST:PORT``), ``None`` if empty, or refuse it."""
    if address is None or not address.strip():
        return None
    address = address.strip()
    if not _SCHEDULER.match(address):
        raise ConfigError(
            f"the Dask scheduler address must look like tcp://HOST:PORT "
            f"(schemes: {', '.join(SCHEDULER_SCHEMES)}), got {address!r}",
            setting="dask_scheduler",
        )
    return address


def _default_cache_dir(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    base = env.get("XDG_CACHE_HOME") or str((Path(home) if home else Path.home()) / ".cache")
    return Path(base) / "mlcontainer"


@dataclass(frozen=True)
class Settings:
    """Configuration shared by the CLI and the server; options override it field by field."""

    model_dir: Path = Path("artifacts")
    cache_dir: Path = Path(".cache/mlcontainer")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    threads: int = 1
    timeout: int = 30
    graceful_timeout: int = 8
    log_format: str = "text"
    log_level: str = "info"
    max_rows: int = 10_000
    max_body_bytes: int = 10 * 1024 * 1024
    #: Dask scheduler (tcp://HOST:PORT) for `train`'s cross-validation; empty: run locally.
    dask_scheduler: str = ""
    #: auto (ONNX when verified, else scikit-learn), onnx or sklearn, for `serve` and `predict`.
    runtime: str = "auto"
    #: Recent rows each server worker keeps for the drift gauges of /metrics; 0 turns them off.
    drift_window: int = 10_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``MLCONTAINER_*`` variables (plus ``PORT`` and ``MODEL_DIR``) and validate them."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {"cache_dir": _default_cache_dir(env)}
        # Platform conventions first (Cloud Run sets PORT); the prefixed names win over them.
        if "PORT" in env:
            values["port"] = env["PORT"]
        if "MODEL_DIR" in env:
            values["model_dir"] = env["MODEL_DIR"]
        for field in fields(cls):
            name = ENV_PREFIX + field.name.upper()
            if name in env:
                values[field.name] = env[name]
        return cls().with_overrides(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        """Return a copy with the given non-``None`` values, converted and validated."""
        known = {f.name: f for f in fields(self)}
        converted: dict[str, Any] = {}
        for key, raw in overrides.items():
            if raw is None:
                continue
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}; valid: {', '.join(sorted(known))}")
            converted[key] = _convert(key, type(getattr(self, key)), raw)
        settings = replace(self, **converted)
        settings._validate()
        return settings

    def _validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be between 1 and 65535, got {self.port}", setting="port")
        for name in ("workers", "threads", "timeout", "max_rows", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"{name} must be at least 1, got {getattr(self, name)}", setting=name
                )
        if self.graceful_timeout < 0:
            raise ConfigError(
                f"graceful_timeout must be >= 0, got {self.graceful_timeout}",
                setting="graceful_timeout",
            )
        if not 0 <= self.drift_window <= MAX_DRIFT_WINDOW:
            raise ConfigError(
                f"drift_window must be between 0 (off) and {MAX_DRIFT_WINDOW} rows, got "
                f"{self.drift_window}",
                setting="drift_window",
            )
        check_scheduler(self.dask_scheduler)
        if self.runtime not in RUNTIMES:
            raise ConfigError(
                f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}",
                setting="runtime",
            )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(
                f"log_format must be one of {', '.join(LOG_FORMATS)}, got {self.log_format!r}",
                setting="log_format",
            )


def _convert(key: str, kind: type, raw: Any) -> Any:
    if isinstance(raw, kind):
        return raw
    if issubclass(kind, Path):  # type(Path(...)) is PosixPath, not Path
        return Path(str(raw))
    if kind is int:
        try:
            return int(str(raw).strip())
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, got {raw!r}", setting=key) from None
    return str(raw)
