"""Train the model baked into the container image, importing only the training modules.

``python -m mlcontainer.bake [--option value ...]`` runs the job ``mlcontainer train`` runs,
with the same long options and defaults, but without the command line's modules: the image's
model stage copies only the training code, so a change to the CLI, serving or prediction code
reuses the baked model instead of retraining it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from mlcontainer.config import Settings
from mlcontainer.errors import MlcontainerError
from mlcontainer.models import parse_model_names
from mlcontainer.workflow import TrainOptions, run_training

#: Fields that come from the settings only, as for `mlcontainer train`.
_SETTINGS_ONLY = ("cache_dir",)


def parse_options(argv: Sequence[str], *, settings: Settings | None = None) -> TrainOptions:
    """Return the options `mlcontainer train` builds from the same long options and settings."""
    settings = Settings.from_env() if settings is None else settings
    defaults = TrainOptions(
        output=settings.model_dir,
        cache_dir=settings.cache_dir,
        scheduler=settings.dask_scheduler or None,
    )
    parser = argparse.ArgumentParser(prog="python -m mlcontainer.bake", description=__doc__)
    names = [f.name for f in fields(TrainOptions) if f.name not in _SETTINGS_ONLY]
    for name in names:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, metavar="VALUE")
    given = {k: v for k, v in vars(parser.parse_args(list(argv))).items() if v is not None}
    try:
        return replace(
            defaults, **{k: _convert(k, v, getattr(defaults, k)) for k, v in given.items()}
        )
    except ValueError as exc:
        parser.error(str(exc))


def _convert(name: str, text: str, default: Any) -> Any:
    """Read one option's text the way the CLI's option types do."""
    if name == "models":
        return tuple(parse_model_names(text))
    if isinstance(default, tuple):  # comma-separated lists: --na-values, --drop
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(default, Path):
        return Path(text)
    if isinstance(default, int | float):
        try:
            return type(default)(text)
        except ValueError:
            raise ValueError(f"--{name.replace('_', '-')}: {text!r} is not a number") from None
    return text


def main(argv: Sequence[str] | None = None) -> None:
    """Train and save the model, printing one line about the selected model."""
    try:
        options = parse_options(sys.argv[1:] if argv is None else argv)
        outcome = run_training(options)
    except MlcontainerError as exc:
        raise SystemExit(f"Error: {exc.message}") from None
    scores = outcome.evaluation.metrics
    metrics = ", ".join(f"{k} {scores[k]:.4f}" for k in dict.fromkeys(("accuracy", options.metric)))
    print(
        f"Selected: {outcome.result.selected}, on {len(outcome.result.split.X_test)} held-out "
        f"test rows ({metrics}); saved to {outcome.output}"
    )


if __name__ == "__main__":
    main()
