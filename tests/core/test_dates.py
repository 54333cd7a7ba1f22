"""Dates: the one parser, the format fixed from a column's values, the calendar step."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from mlcontainer.core.dates import DateFeatures, calendar, detect_format, parse, parts


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("2019-03-23 20:21:09", "%Y-%m-%d %H:%M:%S", datetime(2019, 3, 23, 20, 21, 9)),
        ("2019-03-23T20:21:09.5", "%Y-%m-%dT%H:%M:%S.%f", datetime(2019, 3, 23, 20, 21, 9, 500000)),
        ("2019-03-23T20:21:09+02:00", "%Y-%m-%dT%H:%M:%S%z", datetime(2019, 3, 23, 20, 21, 9)),
        ("2019-03-23T20:21:09Z", "%Y-%m-%dT%H:%M:%S%z", datetime(2019, 3, 23, 20, 21, 9)),
        (" 3/7/2020 ", "%m/%d/%Y", datetime(2020, 3, 7)),
        ("07 Mar 2020", "%d %b %Y", datetime(2020, 3, 7)),
    ],
)
def test_parse_reads_a_date_in_its_format(text: str, fmt: str, expected: datetime) -> None:
    assert parse(text, fmt) == expected


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("2019-02-30", "%Y-%m-%d"),  # no such day
        ("2019-03-23 25:00:00", "%Y-%m-%d %H:%M:%S"),  # no such hour
        ("2019-03-23", "%Y-%m-%d %H:%M:%S"),  # the time is part of the format
        ("2019-03-23 20:21:09 extra", "%Y-%m-%d %H:%M:%S"),
        ("07 Xyz 2020", "%d %b %Y"),
    ],
)
def test_parse_refuses_what_the_format_does_not_describe(text: str, fmt: str) -> None:
    assert parse(text, fmt) is None


def test_detect_format_finds_timestamps_despite_a_stray_value() -> None:
    values = [f"2019-03-{d:02d} {h:02d}:15:00" for d in range(1, 29) for h in range(0, 24, 6)]
    assert detect_format([*values, "unknown"]) == "%Y-%m-%d %H:%M:%S"


def test_detect_format_tells_day_first_from_month_first_by_the_days_over_12() -> None:
    assert detect_format([f"{d}/{m}/2020" for d in range(1, 29) for m in (1, 6)]) == "%d/%m/%Y"
    assert detect_format([f"{m}/{d}/2020" for d in range(1, 29) for m in (1, 6)]) == "%m/%d/%Y"


@pytest.mark.parametrize(
    "values",
    [
        ["male", "female"] * 20,
        ["2019-03-01", "soon", "later", "never"] * 10,  # a quarter parses: not a date column
        [],
    ],
)
def test_detect_format_says_none_for_columns_that_are_not_dates(values: list[str]) -> None:
    assert detect_format(values) is None


def test_calendar_gives_year_month_day_weekday_days_and_hour_with_missing_as_nan() -> None:
    fmt = "%Y-%m-%d %H:%M:%S"
    out = calendar(["1970-01-02 12:00:00", None, "not a date", math.nan], fmt)
    assert parts(fmt) == ("year", "month", "day", "day_of_week", "days", "hour")
    assert out[0].tolist() == [1970, 1, 2, 4, 1.5, 12]  # 2 January 1970 was a Friday
    assert np.isnan(out[1:]).all()
    assert calendar(["1970-01-02"], "%Y-%m-%d").shape == (1, 5)  # no hour without a time


def test_date_features_step_clones_names_its_outputs_and_survives_skops() -> None:
    import pandas as pd
    import skops.io
    from sklearn.base import clone

    frame = pd.DataFrame({"pickup": ["2020-01-01 08:00:00", None], "day": ["2020-01-01", "x"]})
    step = clone(DateFeatures(formats=("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")))
    out = step.fit_transform(frame)
    assert out.shape == (2, 11)
    assert list(step.get_feature_names_out())[:2] == ["pickup_year", "pickup_month"]
    assert list(step.get_feature_names_out())[-1] == "day_days"
    data = skops.io.dumps(step)
    assert skops.io.get_untrusted_types(data=data) == ["mlcontainer.core.dates.DateFeatures"]
    loaded = skops.io.loads(data, trusted=["mlcontainer.core.dates.DateFeatures"])
    np.testing.assert_array_equal(loaded.transform(frame), out)


def test_date_features_refuses_a_column_count_other_than_its_formats() -> None:
    with pytest.raises(ValueError, match="1 formats for 2 columns"):
        DateFeatures(formats=("%Y-%m-%d",)).fit(np.array([["2020-01-01", "2020-01-01"]]))


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"])
def test_fixed_width_values_read_fast_give_what_parse_gives(fmt: str) -> None:
    rng = np.random.default_rng(0)
    texts = [
        f"{y:04d}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
        for y, m, d, h, mi, s in zip(
            rng.integers(0, 2100, 3000), rng.integers(0, 14, 3000), rng.integers(0, 33, 3000),
            rng.integers(0, 26, 3000), rng.integers(0, 61, 3000), rng.integers(0, 61, 3000),
            strict=True,
        )
    ]  # fmt: skip
    width = len(datetime(2000, 1, 1).strftime(fmt))
    values: list[object] = [t[:width].replace("T", fmt[8:9] if "T" in fmt else " ") for t in texts]
    values += ["2019-1-5", " 2019-01-05", "2000-02-29", "1900-02-29", None, math.nan, "x" * width]
    fast = calendar(values, fmt)
    slow = np.full_like(fast, np.nan)
    for i, value in enumerate(values):
        if isinstance(value, str):
            slow[i] = calendar([value + " "], fmt)[0]  # one stray space: the slow path
    np.testing.assert_array_equal(fast, slow)
    assert np.isfinite(fast[:, 0]).sum() > 1000  # most are real dates
