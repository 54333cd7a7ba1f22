"""Batch prediction of large files: chunked, numbered, complete-or-absent, flat memory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference.batch import predict_file
from mlcontainer.inference.predictor import Predictor, load_predictor


def _iris_rows(predictor: Predictor, path: Path, rows: int, *, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    names = predictor.schema.names
    values = rng.uniform(0.5, 7.5, size=(rows, len(names))).round(2)
    pd.DataFrame(values, columns=names).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_chunked_output_equals_one_chunk_output(
    iris_predictor: Predictor, tmp_path: Path, fmt: str
) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 23)
    outputs = {}
    for chunk_rows in (1, 5, 1000):
        out = tmp_path / f"out-{chunk_rows}.{fmt}"
        result = predict_file(iris_predictor, source, output=out, fmt=fmt, chunk_rows=chunk_rows)
        assert result.rows == 23
        outputs[chunk_rows] = out.read_bytes()
    if fmt == "csv":
        assert outputs[1] == outputs[5] == outputs[1000]
        assert len(outputs[5].decode().splitlines()) == 24
        return
    # JSON keeps every digit, and BLAS may round a 1-row product differently from a 5-row one.
    parsed = {k: json.loads(v) for k, v in outputs.items()}
    assert len(parsed[5]) == 23
    for k in (1, 1000):
        assert [r["prediction"] for r in parsed[k]] == [r["prediction"] for r in parsed[5]]
        for a, b in zip(parsed[k], parsed[5], strict=True):
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-12)


def test_stream_output_gets_rows_as_they_come(iris_predictor: Predictor, tmp_path: Path) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 12)
    sink = io.BytesIO()
    seen: list[tuple[int, int]] = []
    predict_file(
        iris_predictor,
        source,
        output=sink,
        fmt="csv",
        chunk_rows=5,
        on_progress=lambda rows, read: seen.append((rows, read)),
    )
    assert [rows for rows, _ in seen] == [5, 10, 12]
    assert seen[-1][1] == source.stat().st_size
    assert len(sink.getvalue().decode().splitlines()) == 13


def test_a_bad_value_in_a_later_chunk_is_named_by_its_file_line(
    iris_predictor: Predictor, tmp_path: Path
) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 30)
    frame = pd.read_csv(source).astype(object)
    column = iris_predictor.schema.names[1]
    frame.loc[17, column] = "tall"
    frame.to_csv(source, index=False)
    out = tmp_path / "out.csv"
    with pytest.raises(InputValidationError) as info:
        predict_file(iris_predictor, source, output=out, fmt="csv", chunk_rows=5)
    # Data row 17 is line 19 of the file (the header is line 1).
    assert f"column {column!r}, line 19: expected a number, got 'tall'" in info.value.message
    assert info.value.details[0]["line"] == 19
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_row_with_too_many_fields_in_a_later_chunk_is_refused_by_its_file_row(
    iris_predictor: Predictor, tmp_path: Path
) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 12)
    lines = source.read_text().splitlines()
    lines[8] += ",9.9"  # the file's line 9 holds data row 7
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    # The same message as in the first chunk, naming the file's line.
    message = (
        r"^cannot parse the input CSV: line 9: it has 5 fields for 4 columns; quote a field "
        r"that holds the delimiter$"
    )
    with pytest.raises(InputValidationError, match=message):
        predict_file(iris_predictor, source, output=out, fmt="csv", chunk_rows=5)
    assert not out.exists()


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_both_runtimes_stream_the_same_rows_whatever_the_chunk_size(
    iris_model_dir: Path, tmp_path: Path, runtime: str
) -> None:
    predictor = load_predictor(iris_model_dir, runtime)
    source = _iris_rows(predictor, tmp_path / "in.csv", 23)
    outputs = set()
    for chunk_rows in (4, 100):
        out = tmp_path / f"out-{chunk_rows}.csv"
        result = predict_file(predictor, source, output=out, fmt="csv", chunk_rows=chunk_rows)
        assert result.rows == 23
        outputs.add(out.read_bytes())
    assert len(outputs) == 1


def test_an_interrupted_run_leaves_no_output_and_keeps_the_old_one(
    iris_predictor: Predictor, tmp_path: Path
) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 40)
    out = tmp_path / "out.csv"
    out.write_text("previous\n")

    def interrupt(rows: int, _read: int) -> None:
        if rows >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predict_file(
            iris_predictor, source, output=out, fmt="csv", chunk_rows=10, on_progress=interrupt
        )
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_parquet_input_is_read_in_chunks_like_csv(
    iris_predictor: Predictor, tmp_path: Path
) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 17)
    parquet = tmp_path / "in.parquet"
    pd.read_csv(source).to_parquet(parquet)
    from_csv, from_parquet = tmp_path / "a.csv", tmp_path / "b.csv"
    predict_file(iris_predictor, source, output=from_csv, fmt="csv", chunk_rows=4)
    predict_file(iris_predictor, parquet, output=from_parquet, fmt="csv", chunk_rows=4)
    assert from_csv.read_bytes() == from_parquet.read_bytes()


def test_a_header_without_rows_is_refused(iris_predictor: Predictor, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(",".join(iris_predictor.schema.names) + "\n")
    with pytest.raises(InputValidationError, match="no rows to predict"):
        predict_file(iris_predictor, source, output=tmp_path / "out.csv", fmt="csv")
    assert not (tmp_path / "out.csv").exists()


_MEASURE = """
import resource, sys
from mlcontainer.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    if exc.code:
        raise
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def _peak_kib(model_dir: Path, source: Path, out: Path) -> int:
    args = ["predict", "--model", str(model_dir), "-i", str(source), "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args, "--chunk-size", "10000"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return int(done.stderr.strip().splitlines()[-1])


@pytest.mark.slow
def test_streaming_prediction_memory_stays_flat(
    iris_predictor: Predictor, iris_model_dir: Path, tmp_path: Path
) -> None:
    small = _iris_rows(iris_predictor, tmp_path / "small.csv", 20_000)
    large = _iris_rows(iris_predictor, tmp_path / "large.csv", 400_000, seed=1)
    small_peak = _peak_kib(iris_model_dir, small, tmp_path / "small-out.csv")
    large_peak = _peak_kib(iris_model_dir, large, tmp_path / "large-out.csv")
    assert len((tmp_path / "large-out.csv").read_text().splitlines()) == 400_001
    # 20x the rows; reading the whole file at once would add well over 100 MiB.
    assert large_peak - small_peak < 40 * 1024, (small_peak, large_peak)


@pytest.mark.parametrize("reader", ["auto", "arrow", "stdlib"])
@pytest.mark.parametrize("where", ["a later chunk", "the last line, without its newline"])
def test_a_row_with_too_few_fields_is_refused_by_its_file_line_and_nothing_is_written(
    iris_predictor: Predictor, tmp_path: Path, reader: str, where: str
) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 30)
    lines = source.read_text().splitlines()
    if where == "a later chunk":
        lines[22] = lines[22].rsplit(",", 2)[0]  # line 23 keeps 2 of its 4 fields
        text, line, fields = "\n".join(lines) + "\n", 23, 2
    else:  # an upload cut off in the middle of the last row
        text, line, fields = "\n".join(lines)[:-6], 31, 3
    source.write_text(text)
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    message = (
        rf"^cannot parse the input CSV: line {line}: it has {fields} fields for 4 columns; is the "
        r"row cut short\? write an empty field for a missing value$"
    )
    with pytest.raises(InputValidationError, match=message) as info:
        predict_file(iris_predictor, source, output=out, fmt="csv", chunk_rows=5, csv_reader=reader)
    assert info.value.details[0]["line"] == line
    assert out.read_text() == "previous\n"  # untouched: no half-written output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_a_short_row_of_a_headerless_input_is_refused_against_the_schema(
    uci_model_dir: Path, uci_file: Path, tmp_path: Path
) -> None:
    predictor = load_predictor(uci_model_dir, "sklearn")
    lines = uci_file.read_text().splitlines()
    # The training file's columns, the target dropped: five fields a row; line 4 keeps three.
    rows = [line.rsplit(",", 1)[0] for line in lines[:10]]
    rows[3] = rows[3].rsplit(",", 2)[0]
    source = tmp_path / "rows.csv"
    source.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputValidationError, match=r"line 4: it has 3 fields for 5 columns"):
        predict_file(predictor, source, output=tmp_path / "out.csv", fmt="csv", header=False)
    assert not (tmp_path / "out.csv").exists()


def _three_outputs(predictor: Predictor, source: Path, tmp_path: Path) -> dict[str, Path]:
    outputs = {fmt: tmp_path / f"out.{fmt}" for fmt in ("csv", "json", "parquet")}
    for fmt, out in outputs.items():
        assert predict_file(predictor, source, output=out, fmt=fmt, chunk_rows=7).rows == 30
    return outputs


def test_csv_json_and_parquet_outputs_agree_row_for_row(
    penguins_predictor: Predictor, tmp_path: Path
) -> None:
    from mlcontainer.training.data.dataset import load_dataset

    source = tmp_path / "in.csv"
    load_dataset("penguins").X.head(30).to_csv(source, index=False)
    outputs = _three_outputs(penguins_predictor, source, tmp_path)
    from_csv = pd.read_csv(outputs["csv"])
    from_json = json.loads(outputs["json"].read_text())
    from_parquet = pd.read_parquet(outputs["parquet"])
    assert list(from_parquet.columns) == list(from_csv.columns)
    labels = from_parquet["prediction"].tolist()
    assert labels == from_csv["prediction"].tolist() == [r["prediction"] for r in from_json]
    for i, record in enumerate(from_json):
        for name, p in record["probabilities"].items():
            # Parquet keeps every digit, like JSON; CSV rounds to 6 significant digits.
            assert from_parquet.loc[i, f"proba_{name}"] == p
            assert from_csv.loc[i, f"proba_{name}"] == pytest.approx(p, rel=1e-5, abs=1e-9)


def test_parquet_output_of_a_regressor_matches_its_json(
    diabetes_model_dir: Path, tmp_path: Path
) -> None:
    predictor = load_predictor(diabetes_model_dir)
    rng = np.random.default_rng(3)
    source = tmp_path / "in.csv"
    names = predictor.schema.names
    pd.DataFrame(rng.normal(0, 0.05, size=(30, len(names))), columns=names).to_csv(
        source, index=False
    )
    outputs = _three_outputs(predictor, source, tmp_path)
    expected = json.loads(outputs["json"].read_text())["predictions"]
    assert pd.read_parquet(outputs["parquet"])["prediction"].tolist() == expected


def test_a_failed_parquet_output_leaves_no_file(iris_predictor: Predictor, tmp_path: Path) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 30)
    frame = pd.read_csv(source).astype(object)
    frame.loc[25, iris_predictor.schema.names[0]] = "tall"
    frame.to_csv(source, index=False)
    with pytest.raises(InputValidationError, match="line 27"):
        predict_file(
            iris_predictor, source, output=tmp_path / "out.parquet", fmt="parquet", chunk_rows=5
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_parquet_output_to_a_stream_is_refused(iris_predictor: Predictor, tmp_path: Path) -> None:
    source = _iris_rows(iris_predictor, tmp_path / "in.csv", 3)
    with pytest.raises(InputValidationError, match=r"add --output OUT\.parquet"):
        predict_file(iris_predictor, source, output=io.BytesIO(), fmt="parquet")


def _partitions(predictor: Predictor, tmp_path: Path, sizes: tuple[int, ...]) -> Path:
    """A folder of Parquet partitions (written in reverse order) and Spark's marker files."""
    whole = pd.read_csv(_iris_rows(predictor, tmp_path / "whole.csv", sum(sizes)))
    folder = tmp_path / "parts"
    folder.mkdir()
    bounds = np.cumsum((0, *sizes))
    for i in reversed(range(len(sizes))):
        part = whole.iloc[bounds[i] : bounds[i + 1]]
        part.to_parquet(folder / f"part-{i:05d}.parquet", index=False, row_group_size=4)
    (folder / "_SUCCESS").write_bytes(b"")
    (folder / ".part-00000.parquet.crc").write_bytes(b"not parquet")
    return folder


def test_a_folder_of_parquet_partitions_is_read_in_name_order(
    iris_predictor: Predictor, tmp_path: Path
) -> None:
    folder = _partitions(iris_predictor, tmp_path, (5, 9, 3))
    from_folder, from_csv = tmp_path / "folder.csv", tmp_path / "csv.csv"
    result = predict_file(iris_predictor, folder, output=from_folder, fmt="csv", chunk_rows=3)
    predict_file(iris_predictor, tmp_path / "whole.csv", output=from_csv, fmt="csv")
    assert result.rows == 17
    assert from_folder.read_bytes() == from_csv.read_bytes()


def test_a_bad_partition_is_named_with_its_row_counted_from_1(
    iris_predictor: Predictor, tmp_path: Path
) -> None:
    folder = _partitions(iris_predictor, tmp_path, (5, 9, 3))
    bad = folder / "part-00001.parquet"
    frame = pd.read_parquet(bad)
    column = iris_predictor.schema.names[2]
    frame[column] = frame[column].astype(str)  # a text column, read by the cell rules
    frame.loc[6, column] = "tall"  # the partition's 7th row, in its second row group
    frame.to_parquet(bad, index=False, row_group_size=4)
    out = tmp_path / "out.parquet"
    with pytest.raises(InputValidationError) as info:
        predict_file(iris_predictor, folder, output=out, fmt="parquet", chunk_rows=3)
    assert info.value.message.startswith(
        f"in {bad} (rows counted from 1): column {column!r}, row 7: expected a number"
    )
    assert not out.exists()


def test_a_folder_without_parquet_partitions_is_refused(
    iris_predictor: Predictor, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "_SUCCESS").write_bytes(b"")
    with pytest.raises(InputValidationError, match="holds no Parquet partitions"):
        predict_file(iris_predictor, tmp_path / "in", output=tmp_path / "out.csv", fmt="csv")


def test_an_arrow_batch_is_predicted_as_its_parquet_file_is(
    penguins_predictor: Predictor, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlcontainer.inference.batch import predict_table
    from mlcontainer.training.data.dataset import load_dataset

    frame = load_dataset("penguins").X.head(40)
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    out = tmp_path / "out.parquet"
    predict_file(penguins_predictor, tmp_path / "in.parquet", output=out, fmt="parquet")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert predict_table(penguins_predictor, table).equals(pq.read_table(out))
    frame = frame.dropna().astype({"bill_length_mm": str})  # a text column: read by cell rules
    frame.iloc[30, frame.columns.get_loc("bill_length_mm")] = "long"
    match = r"^in spark batch \(rows counted from 1\): column 'bill_length_mm', row 31: "
    with pytest.raises(InputValidationError, match=match):
        predict_table(
            penguins_predictor,
            pa.Table.from_pandas(frame, preserve_index=False),
            name="spark batch",
        )
