"""A training run as people see it, for `mlcontainer train` and the image's build.

``python -m mlcontainer.bake [--option value ...]`` runs the job ``mlcontainer train`` runs,
with the same options and defaults (both are generated from
:class:`~mlcontainer.training.options.TrainOptions`) and the same output, but without the
command line: the image's model stage copies only this module, ``console``, the core and
``training/``, so a change to the CLI, inference or serving code reuses the baked model
instead of retraining it, and ``docker build`` prints what ``docker run IMAGE train`` prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import Field
from typing import Any

from mlcontainer.core.artifacts import check_writable
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

# The training stack (scikit-learn, the workflow) and the console's rich tables are imported by
# run_and_show, after the output folder is checked: a folder that cannot be written to is
# told at once, not after the run (nor after seconds of imports).


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
    parser = argparse.ArgumentParser(prog="python -m mlcontainer.bake", description=__doc__)
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


def run_and_show(options: TrainOptions, *, started: float | None = None) -> None:
    """Check the output folder, then train with progress on stderr and show the outcome.

    The time budget counts from ``started`` (a ``time.perf_counter`` reading: the command's
    own start), else from the call."""
    check_writable(options.output)
    from mlcontainer import console
    from mlcontainer.training.workflow import run_training

    with console.training_progress(budget=options.time_budget, cv=options.cv) as progress:
        outcome = run_training(
            options,
            progressbar=progress.download_bar(),
            on_fold=progress.on_fold,
            on_stage=progress.on_stage,
            on_note=progress.on_note,
            started=started,
        )
    console.show_training(outcome)


def main(argv: Sequence[str] | None = None) -> None:
    """Train and save the model, printing what `mlcontainer train` prints."""
    try:
        started = time.perf_counter()
        run_and_show(parse_options(sys.argv[1:] if argv is None else argv), started=started)
    except MlcontainerError as exc:
        raise SystemExit(f"Error: {exc.message}") from None


if __name__ == "__main__":
    main()
