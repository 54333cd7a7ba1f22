"""Train the model baked into the container image, importing only the core and ``training``.

``python -m mlcontainer.training.bake [--option value ...]`` runs the job ``mlcontainer train``
runs, with the same options and defaults (both are generated from
:class:`~mlcontainer.training.options.TrainOptions`), but without the command line: the
image's model stage copies only the core and ``training/``, so a change to the CLI,
inference or serving code reuses the baked model instead of retraining it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import Field
from typing import Any

from mlcontainer.core.config import Settings
from mlcontainer.core.errors import MlcontainerError
from mlcontainer.training.options import (
    SYNTAX_KINDS,
    TrainOptions,
    convert,
    flag_of,
    help_text,
    info_of,
    option_fields,
)
from mlcontainer.training.search.scheduler import clock
from mlcontainer.training.workflow import run_training


def _reader(f: Field[Any]) -> Any:
    kind = info_of(f).kind

    def read(text: str) -> Any:
        if kind not in SYNTAX_KINDS:
            return text  # read and checked by TrainOptions.from_given
        try:
            return convert(kind, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return read


def _escaped(f: Field[Any]) -> str:
    return help_text(f).replace("%", "%%")  # argparse formats help with %


def parse_options(argv: Sequence[str], *, settings: Settings | None = None) -> TrainOptions:
    """Return the options `mlcontainer train` builds from the same long options and settings."""
    settings = Settings.from_env() if settings is None else settings
    parser = argparse.ArgumentParser(
        prog="python -m mlcontainer.training.bake", description=__doc__
    )
    for f in option_fields():
        if info_of(f).kind == "flag":
            parser.add_argument(
                flag_of(f), dest=f.name, action=argparse.BooleanOptionalAction, help=_escaped(f)
            )
            continue
        parser.add_argument(
            flag_of(f), dest=f.name, type=_reader(f), metavar="VALUE", help=_escaped(f)
        )
    given = vars(parser.parse_args(list(argv)))
    return TrainOptions.from_given(given, settings)


def main(argv: Sequence[str] | None = None) -> None:
    """Train and save the model, printing one line about the selected model."""
    try:
        started = clock.now()
        options = parse_options(sys.argv[1:] if argv is None else argv)
        outcome = run_training(options, started=started)
    except MlcontainerError as exc:
        raise SystemExit(f"Error: {exc.message}") from None
    scores = outcome.evaluation.metrics
    first = "r2" if outcome.dataset.schema.is_regression else "accuracy"
    metric = outcome.result.metric
    metrics = ", ".join(f"{k} {scores[k]:.4f}" for k in dict.fromkeys((first, metric)))
    print(
        f"Selected: {outcome.result.selected}, on {len(outcome.result.split.X_test)} held-out "
        f"test rows ({metrics}); saved to {outcome.output}"
    )


if __name__ == "__main__":
    main()
