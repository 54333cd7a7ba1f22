"""Render prediction rows as CSV text without a Python object per value.

``printf``'s ``%.6g`` for probabilities, done on whole NumPy arrays: 1 000 000 rows of
``label,p1,p2`` take a few tenths of a second instead of ~4 s of ``str.format`` calls. The
output is byte for byte what ``"{:.6g}".format(p)`` gives (tests check it against Python's own
formatting); values it cannot render exactly the fast way (outside ``[0, 10)``, not finite,
or within rounding noise of a tie between two 6-digit decimals) are formatted by Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The widest %.6g text of a value in [0, 10): "1.23457e-100".
_WIDTH = 12
_ZERO, _DOT, _COMMA, _NEWLINE, _E, _MINUS = (ord(c) for c in "0.,\ne-")
#: Powers of ten by exponent, 0 to 308 (10 ** 309 overflows a float).
_POWERS = 10.0 ** np.arange(0, 309)
#: "000" ... "999" as ASCII rows.
_TRIPLES = np.array([list(f"{i:03d}".encode()) for i in range(1000)], dtype=np.uint8)


def g6(values: np.ndarray) -> np.ndarray:
    """Return ``"{:.6g}".format(v)`` of each value as rows of a uint8 matrix, NUL-padded.

    NUL bytes may sit between characters too (a dropped digit keeps its column); drop every
    NUL to read the text. The matrix is 12 columns wide (all of ``[0, 10)`` fits), wider
    only if a value outside that range needs it.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    # Fast: [1e-300, 10) (and 0); Python formats the rest, including -0.0 and NaN.
    fast = np.isfinite(x) & ~np.signbit(x) & (x < 10) & ((x >= 1e-300) | (x == 0))
    positive = fast & (x > 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        exp = np.floor(np.log10(np.where(positive, x, 1.0))).astype(np.int64)
        # 6 significant digits as an integer in [100000, 999999]; log10 can be off by one
        # next to a power of ten, so settle the exponent on the scaled value itself.
        for _ in range(2):
            scaled = x * _POWERS[np.clip(5 - exp, 0, 308)]
            exp += (scaled >= 999_999.5) & positive
            exp -= (scaled < 99_999.5) & positive
        scaled = x * _POWERS[np.clip(5 - exp, 0, 308)]
        mantissa = np.rint(scaled)
        # A product within noise of a .5 tie may round the other way than printf's exact
        # decimal rounding does: leave those (a handful at most) to Python, with 10 and above.
        tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    fast &= ~(positive & (tie | (exp > 0) | (mantissa < 100_000) | (mantissa > 999_999)))
    positive &= fast
    m = np.where(positive, mantissa, 100_000).astype(np.int64)
    slow = {row: f"{x[row]:.6g}".encode() for row in np.flatnonzero(~fast).tolist()}
    width = max([_WIDTH, *map(len, slow.values())])
    out = np.zeros((x.size, width), dtype=np.uint8)

    # The 6 digits as ASCII, three at a time from a table: no per-digit division.
    chars = np.hstack([_TRIPLES[m // 1000], _TRIPLES[m % 1000]])  # (n, 6)
    # %g drops trailing zeros, and the point when no digit is left after it.
    keep = 6 - np.argmax(chars[:, ::-1] != _ZERO, axis=1)
    chars *= np.arange(6) < keep[:, None]
    out[:, 0] = chars[:, 0]
    out[:, 1] = np.where(keep > 1, _DOT, 0)
    out[:, 2:7] = chars[:, 1:]
    # Below 1e-4: d.ddddde-XX, the exponent after the mantissa's (possibly NUL) columns.
    sci = np.flatnonzero(positive & (exp < -4))
    e = -exp[sci]
    out[sci, 7] = _E
    out[sci, 8] = _MINUS
    out[sci, 9] = np.where(e >= 100, e // 100 + _ZERO, 0)
    out[sci, 10] = (e // 10) % 10 + _ZERO
    out[sci, 11] = e % 10 + _ZERO
    # 1e-4 to 1: "0.", then -exp - 1 zeros, then the digits.
    for zeros in range(4):
        rows = np.flatnonzero(positive & (exp == -1 - zeros))
        block = np.zeros((rows.size, 8 + zeros), dtype=np.uint8)
        block[:, : 2 + zeros] = _ZERO
        block[:, 1] = _DOT
        block[:, 2 + zeros :] = chars[rows]
        out[rows, : 8 + zeros] = block
        out[rows, 8 + zeros :] = 0
    zero = np.flatnonzero(fast & (x == 0))
    out[zero] = 0
    out[zero, 0] = _ZERO
    for row, text in slow.items():
        out[row] = 0
        out[row, : len(text)] = np.frombuffer(text, dtype=np.uint8)
    return out


def csv_body(class_text: Sequence[str], proba: np.ndarray, chosen: np.ndarray) -> bytes:
    """Return ``label,p1,...,pk\\n`` per row: the class at position ``chosen[row]`` (the
    decision's, :func:`mlcontainer.core.decision.decide`), then each probability as %.6g.

    ``class_text`` must need no CSV quoting and hold no NUL character (the padding).
    """
    n, k = proba.shape
    encoded = [t.encode() for t in class_text]
    labels = np.zeros((len(encoded), max(map(len, encoded), default=0) + 1), dtype=np.uint8)
    for i, text in enumerate(encoded):
        labels[i, : len(text)] = np.frombuffer(text, dtype=np.uint8)
        labels[i, len(text)] = _COMMA
    parts = [labels[chosen]] if n else [labels[:0]]
    for j in range(k):
        parts.append(g6(proba[:, j]))
        parts.append(np.full((n, 1), _COMMA if j < k - 1 else _NEWLINE, dtype=np.uint8))
    table = np.hstack(parts)
    rendered: bytes = table[table != 0].tobytes()
    return rendered
