"""The pyarrow CSV reader may only be faster than the stdlib one, never different.

Every test feeds the same bytes to batch prediction with ``csv_reader="arrow"`` and
``csv_reader="stdlib"`` and compares what the model receives (every validated column), the
warnings, the row counts and, for bad input, the error message.
"""

from __future__ import annotations

import io
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import minimal_manifest

from mlcontainer.core.errors import ConfigError, InputValidationError
from mlcontainer.core.schema import Feature, Schema
from mlcontainer.inference import arrowreader as arrowcsv
from mlcontainer.inference.batch import predict_file
from mlcontainer.inference.csvreader import TextChunk
from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.inference.types import Columns

pytest.importorskip("pyarrow", reason="the arrow CSV reader needs pyarrow (mlcontainer[parquet])")


class Recorder:
    """A runtime that keeps the columns it is asked to score and answers 50/50."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[Columns] = []

    def predict_proba(self, columns: Columns) -> np.ndarray:
        self.seen.append({k: v.copy() for k, v in columns.items()})
        rows = len(next(iter(columns.values())))
        return np.full((rows, 2), 0.5)


def recording_predictor(features: tuple[Feature, ...]) -> tuple[Predictor, Recorder]:
    recorder = Recorder()
    schema = Schema(features=features, target="y", classes=("a", "b"))
    manifest = minimal_manifest("recorded", schema)
    return Predictor(recorder, manifest=manifest, sha256=""), recorder


SMALL = (
    Feature("num", "numeric"),
    Feature("cat", "categorical", categories=("x", "y")),
    Feature("flag", "boolean"),
)


def outcome(
    data: bytes, reader: str, features: tuple[Feature, ...] = SMALL, chunk_rows: int = 3
) -> tuple[Any, ...]:
    """What the model saw (or the error), reading ``data`` with ``reader``."""
    predictor, recorder = recording_predictor(features)
    out = io.BytesIO()
    try:
        result = predict_file(
            predictor,
            io.BytesIO(data),
            output=out,
            fmt="csv",
            chunk_rows=chunk_rows,
            csv_reader=reader,
            workers=1,
        )
    except InputValidationError as exc:
        return ("error", exc.message, exc.details)
    columns = {
        f.name: [
            "NaN" if isinstance(v, float) and math.isnan(v) else v
            for chunk in recorder.seen
            for v in chunk[f.name].tolist()
        ]
        for f in features
    }
    return ("ok", result.rows, result.warnings, columns, out.getvalue())


CELLS = st.sampled_from(
    [
        "1",
        " 2.5",
        "-3e2 ",
        "\t7",
        "",
        " ",
        "nan",
        "inf",
        "-Infinity",
        "1e400",
        "1_000",
        "?",
        "x",
        " y ",
        "é",
        "true",
        " No",
        "0",
        "maybe",
        "\x0b4",
        '"q"',
        '"a,b"',
        'x"y',
    ]
) | st.text(alphabet=" ,.-+e0123456789abXY\t", max_size=6)


@st.composite
def csv_bytes(draw: st.DrawFn) -> bytes:
    header = draw(
        st.sampled_from(
            [
                "num,cat,flag",
                " num , cat ,flag",
                "flag,num,cat,extra",
                "num,cat",
                "num,num,cat,flag",
            ]
        )
    )
    width = header.count(",") + 1
    rows = draw(
        st.lists(
            st.lists(CELLS, min_size=width - 1, max_size=width + 1).map(",".join) | st.just(""),
            max_size=12,
        )
    )
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    end = draw(st.sampled_from(["", newline, newline * 2]))
    return (newline.join([header, *rows]) + end).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_bytes())
def test_arrow_and_stdlib_readers_give_the_model_the_same_columns_or_the_same_error(
    data: bytes,
) -> None:
    assert outcome(data, "arrow", chunk_rows=1000) == outcome(data, "stdlib", chunk_rows=1000)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_bytes(), chunk_rows=st.integers(1, 5))
def test_arrow_and_stdlib_readers_agree_whatever_the_chunk_size(
    data: bytes, chunk_rows: int
) -> None:
    # Chunks hold the same rows unless there are blank lines, so with several problems in a
    # file the first one reported may differ (as it does between chunk sizes with one reader).
    arrow = outcome(data, "arrow", chunk_rows=chunk_rows)
    stdlib = outcome(data, "stdlib", chunk_rows=chunk_rows)
    assert arrow[0] == stdlib[0]
    if arrow[0] == "ok":
        assert arrow == stdlib


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"num,cat,flag\n1,x,true\n2,y,no\n", "ok"),
        (b"num,cat,flag\n1,x,true\n2,y\n", "line 3: it has 2 fields for 3 columns"),  # cut short
        (b"num,cat,flag\n1,x,true\n2,y", "line 3: it has 2 fields for 3 columns"),  # no newline
        (b"num,cat,flag\n1,x,true\n2,y,no,9\n", "line 3: it has 4 fields"),
        (b"num,cat,flag\n1,x,true\nabc,y,no\n", "expected a number, got 'abc'"),
        (b"num,cat,flag\n1,x,true\nnan,y,no\n", "expected a number, got 'nan'"),
        (b"num,cat,flag\n1,x,perhaps\n", "expected true or false, got 'perhaps'"),
        (b'num,cat,flag\n1,"x, quoted",true\n2,"multi\nline",no\n', "ok"),
        (b"\xef\xbb\xbf\n\nnum,cat,flag\n 1 , x ,TRUE\n\n", "ok"),  # BOM, blank lines, spaces
        (b"num,cat,flag\n1,\xff,true\n", "line 2: it is not UTF-8 text: byte 0xff at character 3"),
        (b"num,cat\n1,x\n", "missing feature(s) 'flag'"),
        (b"num,cat,flag\n", "no rows to predict"),
        (b"", "the input is empty"),
    ],
)
def test_both_readers_agree_on_typical_and_bad_files(data: bytes, expected: str) -> None:
    for chunk_rows in (1, 2, 50):
        arrow, stdlib = (
            outcome(data, "arrow", chunk_rows=chunk_rows),
            outcome(data, "stdlib", chunk_rows=chunk_rows),
        )
        assert arrow == stdlib
        assert arrow[0] == "ok" if expected == "ok" else expected in arrow[1]


def test_a_later_bad_chunk_names_its_file_line() -> None:
    rows = [f"{i},x,true" for i in range(10)]
    rows[7] = "seven,x,true"
    data = ("num,cat,flag\n" + "\n".join(rows) + "\n").encode()
    for reader in ("arrow", "stdlib"):
        kind, message, details = outcome(data, reader, chunk_rows=3)
        assert kind == "error"
        # Data row 7 is line 9 of the file: the header is line 1.
        assert message == "column 'num', line 9: expected a number, got 'seven'"
        assert details[0]["line"] == 9


def test_quotes_hand_the_rest_of_the_file_to_the_stdlib_reader() -> None:
    plain = [f"{i},x,true" for i in range(6)]
    quoted = ['7,"x, y",false', '8,"a ""b""",no']
    data = ("num,cat,flag\n" + "\n".join([*plain, *quoted, *plain]) + "\n").encode()
    chunks = list(arrowcsv.iter_chunks(io.BytesIO(data), chunk_rows=4))
    assert isinstance(chunks[0], arrowcsv.ArrowChunk)  # rows 0-3: no quote, pyarrow
    assert all(isinstance(c, TextChunk) for c in chunks[1:])  # from the first quote on: stdlib
    assert outcome(data, "arrow", chunk_rows=4) == outcome(data, "stdlib", chunk_rows=4)


def _adult_features(header: list[str]) -> tuple[Feature, ...]:
    numeric = {"age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"}
    return tuple(
        Feature(n, "numeric") if n in numeric else Feature(n, "categorical", categories=())
        for n in header
        if n != "income"
    )


@pytest.mark.parametrize("name", ["adult.csv", "titanic.csv"])
def test_real_files_give_the_same_columns_with_both_readers(
    shared_datasets: Path, name: str
) -> None:
    data = (shared_datasets / name).read_bytes()
    header = [h.strip() for h in data.split(b"\n", 1)[0].decode("utf-8-sig").split(",")]
    if name == "adult.csv":
        features = _adult_features(header)
    else:
        numeric = {"age", "fare", "sibsp", "parch", "pclass"}
        features = tuple(
            Feature(n, "numeric") if n in numeric else Feature(n, "categorical", categories=())
            for n in header
            if n not in ("survived", "alive")
        )
    arrow = outcome(data, "arrow", features, chunk_rows=5000)
    assert arrow[0] == "ok"
    assert arrow == outcome(data, "stdlib", features, chunk_rows=5000)


def test_arrow_reader_without_pyarrow_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(arrowcsv, "available", lambda: False)
    predictor, _ = recording_predictor(SMALL)
    with pytest.raises(ConfigError, match=r"needs pyarrow .*mlcontainer\[parquet\]"):
        predict_file(
            predictor,
            io.BytesIO(b"num,cat,flag\n1,x,true\n"),
            output=io.BytesIO(),
            fmt="csv",
            csv_reader="arrow",
        )
    # auto falls back to the stdlib reader
    out = io.BytesIO()
    predict_file(predictor, io.BytesIO(b"num,cat,flag\n1,x,true\n"), output=out, fmt="csv")
    assert out.getvalue().splitlines()[1] == b"a,0.5,0.5"


def test_an_unknown_csv_reader_is_refused() -> None:
    predictor, _ = recording_predictor(SMALL)
    with pytest.raises(ConfigError, match="unknown CSV reader 'fast'; valid: auto, arrow, stdlib"):
        predict_file(
            predictor, io.BytesIO(b"num\n1\n"), output=io.BytesIO(), fmt="csv", csv_reader="fast"
        )


def test_parallel_chunks_are_written_in_input_order(iris_model_dir: Path, tmp_path: Path) -> None:
    predictor = load_predictor(iris_model_dir, "onnx", threads=1)
    rng = np.random.default_rng(5)
    names = predictor.schema.names
    lines = [",".join(names)] + [
        ",".join(f"{v:.2f}" for v in row) for row in rng.uniform(0.5, 7.5, (503, len(names)))
    ]
    source = tmp_path / "rows.csv"
    source.write_text("\n".join(lines) + "\n")
    outputs = []
    for workers in (1, 2, 4):
        out = tmp_path / f"out-{workers}.csv"
        predict_file(predictor, source, output=out, fmt="csv", chunk_rows=10, workers=workers)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(outputs[0].splitlines()) == 504


def test_a_failed_run_leaves_no_reading_or_predicting_thread(tmp_path: Path) -> None:
    predictor, _ = recording_predictor(SMALL)
    rows = [f"{i},x,true" for i in range(2000)] + ["bad,x,true"]
    source = tmp_path / "rows.csv"
    source.write_text("num,cat,flag\n" + "\n".join(rows) + "\n")
    before = threading.active_count()
    with pytest.raises(InputValidationError, match="line 2002"):
        predict_file(predictor, source, output=tmp_path / "out.csv", fmt="csv", chunk_rows=100)
    assert threading.active_count() == before
    assert not list(tmp_path.glob("*out.csv*"))
