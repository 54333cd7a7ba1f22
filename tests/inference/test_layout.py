"""The training file's own rows predict untouched: with or without the header line and the
target, `?` markers and single quotes read as in training, through both runtimes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference.batch import predict_file
from mlcontainer.inference.predictor import Predictor, load_predictor

NAMES = [f"column_{j}" for j in range(1, 7)]


def _predict(predictor: Predictor, data: bytes, **options: object) -> tuple[list[str], list[str]]:
    """Output lines and warnings of `predict` on ``data``."""
    out = io.BytesIO()
    result = predict_file(
        predictor,
        io.BytesIO(data),
        output=out,
        fmt="csv",
        **options,  # type: ignore[arg-type]
    )
    lines = out.getvalue().decode().splitlines()
    assert len(lines) == result.rows + 1
    return lines, result.warnings


def _without_last_column(text: str) -> str:
    return "\n".join(line.rsplit(",", 1)[0] for line in text.splitlines())


@pytest.fixture(scope="module", params=["onnx", "sklearn"])
def uci(request: pytest.FixtureRequest, uci_model_dir: Path) -> Predictor:
    return load_predictor(uci_model_dir, request.param, threads=1)


def test_the_training_file_itself_predicts_every_row(uci: Predictor, uci_file: Path) -> None:
    lines, warnings = _predict(uci, uci_file.read_bytes())
    assert len(lines) == 121
    assert lines[0] == "prediction,proba_M,proba_R"
    assert any("no header line" in w for w in warnings)
    assert "ignored column 'column_6' (the target: the model predicts it)" in warnings


@pytest.mark.parametrize("csv_reader", ["arrow", "stdlib"])
@pytest.mark.parametrize(
    "variant", ["as-trained", "without-target", "with-header", "with-header-without-target"]
)
def test_every_layout_of_the_training_rows_gives_the_same_answers(
    uci: Predictor, uci_file: Path, variant: str, csv_reader: str
) -> None:
    text = uci_file.read_text()
    reference, _ = _predict(uci, text.encode(), csv_reader="stdlib")
    if "without-target" in variant:
        text = _without_last_column(text)
    if "with-header" in variant:
        header = NAMES if "without" not in variant else NAMES[:-1]
        text = ",".join(header) + "\n" + text
    lines, _ = _predict(uci, text.encode(), csv_reader=csv_reader)
    assert lines == reference


def test_markers_and_quotes_in_json_read_as_in_training(uci: Predictor, uci_file: Path) -> None:
    first = uci_file.read_text().splitlines()[4].split(",")  # a row whose column_2 is `?`
    assert first[1] == "?"
    record = dict(zip(NAMES[:-1], first, strict=False))
    typed = {
        "column_1": float(first[0]),
        "column_2": "?",  # a JSON string equal to a marker: missing, for a numeric feature
        "column_3": float(first[2]),
        "column_4": float(first[3]),
        "column_5": first[4],  # "'hi'" as the file writes it
    }
    plain = {**typed, "column_2": None, "column_5": first[4].strip("'")}
    from_json = uci.predict_records([typed, plain])
    assert from_json.labels[0] == from_json.labels[1]
    np.testing.assert_allclose(from_json.probabilities[0], from_json.probabilities[1])
    from_csv, _ = _predict(uci, (",".join(NAMES[:-1]) + "\n" + ",".join(record.values())).encode())
    assert from_csv[1].split(",")[0] == from_json.labels[0]


def test_a_headerless_row_of_another_width_is_refused_naming_the_widths(uci: Predictor) -> None:
    with pytest.raises(InputValidationError, match=r"must have 6 or 5 fields .* line 1 has 3"):
        _predict(uci, b"1.0,2.0,3.0\n4.0,5.0,6.0\n", header=False)


def test_an_unrecognisable_first_row_is_a_header_that_names_the_missing_features(
    uci: Predictor,
) -> None:
    with pytest.raises(InputValidationError, match=r"missing feature\(s\) 'column_1'"):
        _predict(uci, b"a,b,c,d,e\n1,2,3,4,'hi'\n")


def test_columns_name_an_input_without_a_header(uci: Predictor) -> None:
    data = b"'hi',1,0.5,?,0.25\n'lo',3,0.1,0.2,-1\n"
    names = ["column_5", "column_4", "column_1", "column_2", "column_3"]
    lines, _ = _predict(uci, data, columns=names)
    assert len(lines) == 3


@pytest.mark.parametrize("csv_reader", ["arrow", "stdlib"])
def test_an_unterminated_quote_is_refused_at_its_line_and_writes_nothing(
    uci: Predictor, uci_file: Path, tmp_path: Path, csv_reader: str
) -> None:
    lines = uci_file.read_text().splitlines()
    lines[2] = lines[2].replace("'", '"', 1)  # line 3 opens a double quote and never closes it
    source = tmp_path / "broken.csv"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    with pytest.raises(InputValidationError, match=r"line 3: a quoted field starts on this line"):
        predict_file(uci, source, output=out, fmt="csv", csv_reader=csv_reader)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.csv"]


def test_the_recipe_reaches_predict_from_the_manifest(uci_model_dir: Path) -> None:
    intake = json.loads((uci_model_dir / "model.json").read_text())["intake"]
    assert intake["header"] is False
    assert intake["unquote"] == ["column_5"]
    assert intake["columns"] == NAMES
