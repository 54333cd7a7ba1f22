"""Settings: MLCONTAINER_* variables parsed once, validated, overridable field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcontainer.core.config import Settings
from mlcontainer.core.errors import ConfigError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.model_dir == Path("artifacts")
    assert settings.cache_dir.parts[-2:] == (".cache", "mlcontainer")
    assert settings.port == 8080


def test_prefixed_variables_override_platform_ones() -> None:
    env = {"PORT": "9000", "MLCONTAINER_PORT": "9100", "MODEL_DIR": "/m", "XDG_CACHE_HOME": "/c"}
    settings = Settings.from_env(env)
    assert settings.port == 9100
    assert settings.model_dir == Path("/m")
    assert settings.cache_dir == Path("/c/mlcontainer")
    assert Settings.from_env({"PORT": "9000"}).port == 9000


def test_cache_dir_from_its_own_variable() -> None:
    assert Settings.from_env({"MLCONTAINER_CACHE_DIR": "/x"}).cache_dir == Path("/x")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLCONTAINER_PORT": "http"}, "port must be a whole number, got 'http'"),
        ({"MLCONTAINER_PORT": "70000"}, "port must be between 1 and 65535"),
        ({"MLCONTAINER_WORKERS": "0"}, "workers must be at least 1"),
        ({"MLCONTAINER_LOG_FORMAT": "xml"}, "log_format must be one of text, json"),
    ],
)
def test_bad_values_fail_fast_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_overrides_ignore_none_and_refuse_unknown_names() -> None:
    base = Settings()
    assert base.with_overrides(port=None) == base
    assert base.with_overrides(model_dir="m").model_dir == Path("m")
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        base.with_overrides(colour="red")


def test_cache_dir_under_the_given_home() -> None:
    assert Settings.from_env({"HOME": "/home/u"}).cache_dir == Path("/home/u/.cache/mlcontainer")


def test_runtime_defaults_to_auto_and_options_beat_the_environment() -> None:
    assert Settings.from_env({}).runtime == "auto"
    from_env = Settings.from_env({"MLCONTAINER_RUNTIME": "sklearn"})
    assert from_env.runtime == "sklearn"
    assert from_env.with_overrides(runtime="onnx").runtime == "onnx"
    assert from_env.with_overrides(runtime=None).runtime == "sklearn"


def test_unknown_runtime_is_refused_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"runtime must be one of auto, onnx, sklearn, got 'gpu'"):
        Settings.from_env({"MLCONTAINER_RUNTIME": "gpu"})
