"""Name the valid name a mistyped one was probably meant to be: ``did you mean 'income'?``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'income'?)`` for the closest of ``valid`` names, or ``""``.

    Case is ignored when comparing (``--target Income`` finds ``income``); close means
    difflib's ratio of at least 0.6, its default.
    """
    names = [str(v) for v in valid]
    lowered = {n.lower(): n for n in reversed(names)}  # the first name wins a case tie
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f" (did you mean {lowered[name.lower()]!r}?)"
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""
