"""`mlcontainer serve` settings: options win over the environment, which wins over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcontainer import cli
from mlcontainer.core.config import Settings
from mlcontainer.serving import server


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Replace the gunicorn launcher: record the settings `serve` would run with."""
    seen: list[Settings] = []
    monkeypatch.setattr(server, "serve", seen.append)
    return seen


def test_serve_defaults_are_safe(captured: list[Settings]) -> None:
    result = CliRunner().invoke(cli.main, ["serve"], env={"PORT": None, "MODEL_DIR": None})
    assert result.exit_code == 0, result.output
    (settings,) = captured
    assert (settings.host, settings.port, settings.model_dir) == (
        "127.0.0.1",
        8080,
        Path("artifacts"),
    )
    assert settings.max_rows == 10_000


def test_serve_reads_platform_environment(captured: list[Settings]) -> None:
    env = {"PORT": "9090", "MODEL_DIR": "/app/artifacts", "MLCONTAINER_HOST": "0.0.0.0"}
    assert CliRunner().invoke(cli.main, ["serve"], env=env).exit_code == 0
    (settings,) = captured
    assert settings.model_dir == Path("/app/artifacts")
    assert isinstance(settings.model_dir, Path)
    assert (settings.host, settings.port) == ("0.0.0.0", 9090)


def test_serve_options_win_over_environment(captured: list[Settings]) -> None:
    env = {"PORT": "9090", "MLCONTAINER_WORKERS": "4", "MLCONTAINER_LOG_FORMAT": "text"}
    args = ["serve", "--port", "4000", "--workers", "2", "--log-format", "json", "--model", "m"]
    assert CliRunner().invoke(cli.main, args, env=env).exit_code == 0
    (settings,) = captured
    assert (settings.port, settings.workers, settings.log_format) == (4000, 2, "json")
    assert settings.model_dir == Path("m")


def test_serve_rejects_invalid_settings_with_one_paragraph(captured: list[Settings]) -> None:
    result = CliRunner().invoke(cli.main, ["serve", "--workers", "0"])
    assert result.exit_code == 1
    assert "workers must be at least 1, got 0" in result.output
    assert captured == []


def test_gunicorn_options_follow_settings() -> None:
    opts = server.gunicorn_options(Settings(host="::1", port=4000, workers=2, threads=4))
    assert opts["bind"] == ["[::1]:4000"]
    assert (opts["workers"], opts["threads"]) == (2, 4)
    # One worker class whatever the threads: requests are read whole before a thread sees them.
    assert opts["worker_class"] == server.gunicorn_options(Settings())["worker_class"]
    assert opts["worker_class"] == "mlcontainer.serving.worker.Worker"
    assert server.gunicorn_options(Settings(log_format="json"))["logger_class"] is server.JsonLogger
