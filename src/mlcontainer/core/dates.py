"""Dates in text columns: the one place a date is parsed, and the calendar features it becomes.

``train`` tells a date column by its values (:func:`detect_format`: one format, fixed then,
parses nearly every value that is not missing); the saved pipeline turns it into numbers with
:class:`DateFeatures`, so ``predict`` and every route of ``serve`` apply the same recipe to
their rows. A value the format does not parse is missing, as an empty cell is. A time zone
offset is checked and then set aside: the calendar is the one the value was written in (a
taxi's pickup hour is local).

No pandas or scikit-learn here (the core imports neither): parsing is a regular expression
per format and the transformer is duck-typed (``get_params``/``fit``/``transform``), which
scikit-learn's pipelines, ``clone`` and skops all accept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

import numpy as np

#: Formats tried, in order of preference where several parse a column equally well (a column
#: whose days never exceed 12 reads month first, as most public files write it).
FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%d %b %Y",
    "%b %d, %Y",
)
#: A column is a date column when this share of its values that are not missing parses.
DATE_SHARE = 0.99
#: Values tried first; a format that parses too few of them is not tried on the rest.
SAMPLE_VALUES = 50
#: The calendar features of every date column, then ``hour`` where the format has a time.
PARTS: tuple[str, ...] = ("year", "month", "day", "day_of_week", "days")
HOUR = "hour"

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_FIELDS = {
    "Y": r"(?P<Y>\d{4})",
    "m": r"(?P<m>\d{1,2})",
    "d": r"(?P<d>\d{1,2})",
    "H": r"(?P<H>\d{1,2})",
    "M": r"(?P<M>\d{2})",
    "S": r"(?P<S>\d{2})",
    "f": r"(?P<f>\d{1,9})",
    "z": r"(?P<z>Z|[+-]\d{2}:?\d{2})",
    "b": r"(?P<b>[A-Za-z]{3})",
}
_EPOCH = datetime(1970, 1, 1)


@cache
def _pattern(fmt: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt) and fmt[i + 1] in _FIELDS:
            out.append(_FIELDS[fmt[i + 1]])
            i += 2
        else:
            out.append(re.escape(fmt[i]))
            i += 1
    return re.compile("".join(out))


def parse(text: str, fmt: str) -> datetime | None:
    """Read ``text`` (stripped) as a date in ``fmt``; ``None`` if it is not one."""
    match = _pattern(fmt).fullmatch(text.strip())
    if match is None:
        return None
    fields = match.groupdict()
    month = fields.get("m")
    if fields.get("b") is not None:
        name = str(fields["b"]).lower()
        if name not in _MONTHS:
            return None
        month = str(_MONTHS.index(name) + 1)
    fraction = (fields.get("f") or "0")[:6].ljust(6, "0")
    try:
        return datetime(
            int(fields["Y"]),
            int(month or 1),
            int(fields.get("d") or 1),
            int(fields.get("H") or 0),
            int(fields.get("M") or 0),
            int(fields.get("S") or 0),
            int(fraction),
        )
    except ValueError:  # 31 February, hour 25: not a date
        return None


def detect_format(values: Iterable[str]) -> str | None:
    """The format that reads at least ``DATE_SHARE`` of ``values`` (text that is not missing),
    the best of :data:`FORMATS`; ``None`` when none does or there are no values."""
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    total = sum(counts.values())
    if not total:
        return None
    sample = list(counts)[:SAMPLE_VALUES]
    best: tuple[float, str] | None = None
    for fmt in FORMATS:
        if _share(sample, dict.fromkeys(sample, 1), fmt) < DATE_SHARE:
            continue
        share = _share(counts, counts, fmt)
        if share >= DATE_SHARE and (best is None or share > best[0]):
            best = (share, fmt)
    return best[1] if best is not None else None


def _share(values: Iterable[str], counts: dict[str, int], fmt: str) -> float:
    parsed = sum(counts[v] for v in values if parse(v, fmt) is not None)
    return parsed / sum(counts[v] for v in counts)


def parts(fmt: str) -> tuple[str, ...]:
    """The calendar features a column of this format becomes (``hour`` only with a time)."""
    return (*PARTS, HOUR) if "%H" in fmt else PARTS


def calendar(values: Sequence[Any], fmt: str) -> np.ndarray:
    """One row of :func:`parts` per value (NaN for a missing or unreadable value): year,
    month, day, day of week (Monday 0), days since 1970-01-01 (with the time of day as a
    fraction) and the hour where the format has one."""
    names = parts(fmt)
    out = np.full((len(values), len(names)), np.nan)
    done = _fixed_width(values, fmt, out)
    seen: dict[str, datetime | None] = {}
    for i, value in enumerate(values):
        if done[i] or not isinstance(value, str):
            continue  # read by the fast path; or None, NaN: missing
        if value not in seen:
            seen[value] = parse(value, fmt)
        when = seen[value]
        if when is None:
            continue
        row = [
            when.year,
            when.month,
            when.day,
            when.weekday(),
            (when - _EPOCH).total_seconds() / 86400,
        ]
        if len(names) > len(PARTS):
            row.append(when.hour)
        out[i] = row
    return out


#: Formats of two-digit fields (and a four-digit year) at fixed places: a value exactly as
#: wide as the format is read with array arithmetic, a few hundred times faster than
#: :func:`parse` and with its answers (the tests compare them); any other value goes to it.
_FIXED = {
    "%Y-%m-%d": "YYYY-mm-dd",
    "%Y-%m-%d %H:%M:%S": "YYYY-mm-dd HH:MM:SS",
    "%Y-%m-%dT%H:%M:%S": "YYYY-mm-ddTHH:MM:SS",
    "%Y-%m-%d %H:%M": "YYYY-mm-dd HH:MM",
    "%Y-%m-%dT%H:%M": "YYYY-mm-ddTHH:MM",
}


def _fixed_width(values: Sequence[Any], fmt: str, out: np.ndarray) -> np.ndarray:
    """Fill ``out``'s rows of values laid out as ``_FIXED[fmt]`` (NaN where the date does not
    exist, as :func:`parse` says ``None``); return which rows were read here."""
    layout = _FIXED.get(fmt)
    done = np.zeros(len(values), dtype=bool)
    if layout is None or not len(values):
        return done
    width = len(layout)
    text = np.array([v if isinstance(v, str) and len(v) == width else "" for v in values])
    if text.dtype.itemsize // 4 != width:  # no value of that width at all
        return done
    codes = text.view(np.uint32).reshape(len(values), width).astype(np.int64)
    digits = np.array([c in "YmdHMS" for c in layout])
    shaped = np.all((codes[:, digits] >= 48) & (codes[:, digits] <= 57), axis=1)
    shaped &= np.all(codes[:, ~digits] == [ord(c) for c in layout if c not in "YmdHMS"], axis=1)

    def field(letter: str) -> np.ndarray:
        at = layout.find(letter)
        if at < 0:
            return np.zeros(len(values), dtype=np.int64)
        n = layout.count(letter)
        number = np.zeros(len(values), dtype=np.int64)
        for j in range(at, at + n):
            number = number * 10 + (codes[:, j] - 48)
        return number

    year, month, day = field("Y"), field("m"), field("d")
    hour, minute, second = field("H"), field("M"), field("S")
    ok = shaped & (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    months = np.where(ok, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    length = ((months + 1).astype("datetime64[D]") - months.astype("datetime64[D]")).astype(int)
    ok &= day <= length
    dates = months.astype("datetime64[D]").astype(np.int64) + day - 1  # days since 1970
    seconds = hour * 3600 + minute * 60 + second
    columns = [year, month, day, (dates + 3) % 7, dates + seconds / 86400]  # 1970-01-01: Thu
    if len(out[0]) > len(PARTS):
        columns.append(hour)
    out[ok] = np.column_stack(columns)[ok]
    done[shaped] = True  # shaped but no such date: NaN, as parse() says
    return done


class DateFeatures:
    """A pipeline step: date columns (text, in the formats fixed at training) in, their
    calendar features out (see :func:`calendar`)."""

    def __init__(self, formats: Sequence[str] = ()) -> None:
        self.formats = formats

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The step's settings, for scikit-learn's ``clone``."""
        del deep  # nothing nested
        return {"formats": self.formats}

    def set_params(self, **params: Any) -> DateFeatures:
        """Change the step's settings (scikit-learn's protocol)."""
        for key, value in params.items():
            if key != "formats":
                raise ValueError(f"DateFeatures has no setting {key!r}; valid: formats")
            self.formats = value
        return self

    def fit(self, X: Any, y: Any = None) -> DateFeatures:
        """Remember the columns' names; the formats were fixed when the step was made."""
        del y
        width = np.asarray(X, dtype=object).shape[1]
        if width != len(self.formats):
            raise ValueError(f"DateFeatures has {len(self.formats)} formats for {width} columns")
        columns = getattr(X, "columns", None)
        names = [str(c) for c in columns] if columns is not None else []
        self.feature_names_in_ = np.asarray(names or [f"x{j}" for j in range(width)], dtype=object)
        self.n_features_in_ = width
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Each column's calendar features, side by side."""
        cells = np.asarray(X, dtype=object)
        blocks = [calendar(cells[:, j].tolist(), fmt) for j, fmt in enumerate(self.formats)]
        return np.hstack(blocks) if blocks else np.empty((len(cells), 0))

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """:meth:`fit`, then :meth:`transform`."""
        return self.fit(X, y).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<column>_<part>`` for each column and calendar part."""
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray(
            [
                f"{name}_{part}"
                for name, fmt in zip(names, self.formats, strict=True)
                for part in parts(fmt)
            ],
            dtype=object,
        )
