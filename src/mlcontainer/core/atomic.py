"""Write files all or nothing: a temporary file beside the target, renamed over it at the end."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def current_umask() -> int:
    """Return the process umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: all or nothing.

    The file gets the mode a plain ``open()`` would give (0666 less the umask), not
    mkstemp's 0600: a model trained in a container must stay readable by the host's user.
    """
    with atomic_output(path, suffix=".tmp") as handle:
        handle.write(data)


@contextmanager
def atomic_output(path: Path, *, suffix: str = ".partial") -> Iterator[IO[bytes]]:
    """Yield a temporary file beside ``path``; rename it onto ``path`` only on success.

    Its name (``.NAME.XXXX.partial``) never looks like the finished file, even if the process
    is killed before the cleanup below can run. Raises ``OSError`` when the folder cannot be
    written to; the caller says what that means for its user.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
