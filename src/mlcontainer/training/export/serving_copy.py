"""Copy what the serving-only image needs out of a trained model folder (the image's build).

``python -m mlcontainer.training.export.serving_copy SOURCE TARGET`` copies the manifest, the ONNX
graph and the page's files, each verified against the manifest; never ``model.skops``, which
that image could not load. A folder without a verified ONNX graph is refused, saying why.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from mlcontainer.core.artifacts import MANIFEST_FILE, read_manifest, serving_files, verify_file
from mlcontainer.core.atomic import write_atomic
from mlcontainer.core.errors import MlcontainerError


def copy_for_serving(source: Path, target: Path) -> list[str]:
    """Copy the serving files of ``source`` into ``target``; return their names."""
    manifest = read_manifest(source)
    names = serving_files(source, manifest)
    for name in names:
        data = (
            (source / name).read_bytes()
            if name == MANIFEST_FILE
            else verify_file(source, manifest, name)
        )
        write_atomic(target / name, data)
    return names


def main(argv: Sequence[str] | None = None) -> None:
    """Copy, or exit with the reason (the build fails on that line)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        raise SystemExit("usage: python -m mlcontainer.training.export.serving_copy SOURCE TARGET")
    try:
        names = copy_for_serving(Path(args[0]), Path(args[1]))
    except MlcontainerError as exc:
        raise SystemExit(
            f"Error: {exc.message} (pick another model with --build-arg TRAIN_ARGS=..., "
            "or use the full image)"
        ) from None
    print(f"Copied {', '.join(names)} to {args[1]}")


if __name__ == "__main__":
    main()
