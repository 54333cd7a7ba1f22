"""Predicting from Excel, JSON and JSON Lines files (and compressed CSV): the rows their CSV
gives, and errors that name the file's lines."""

from __future__ import annotations

import json
from pathlib import Path

import palmerpenguins
import pytest
from support import FORMAT_SUFFIXES, format_copy

from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference.batch import predict_file
from mlcontainer.inference.predictor import Predictor


@pytest.fixture(scope="module")
def penguins_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The penguins table (text, numbers, missing values) as a CSV with a header line."""
    path = tmp_path_factory.mktemp("rows") / "penguins.csv"
    palmerpenguins.load_penguins().to_csv(path, index=False)
    return path


def _predict(predictor: Predictor, source: Path, tmp_path: Path, **options: object) -> bytes:
    output = tmp_path / f"out-{source.name}.csv"
    predict_file(predictor, source, output=output, fmt="csv", **options)  # type: ignore[arg-type]
    return output.read_bytes()


@pytest.mark.parametrize("suffix", FORMAT_SUFFIXES)
def test_every_file_type_predicts_what_its_csv_predicts(
    penguins_predictor: Predictor, penguins_csv: Path, tmp_path: Path, suffix: str
) -> None:
    copy = format_copy(penguins_csv, tmp_path / f"rows{suffix}")
    want = _predict(penguins_predictor, penguins_csv, tmp_path)
    assert _predict(penguins_predictor, copy, tmp_path) == want
    # Chunk by chunk too: a chunk's columns are decided on its own rows.
    assert _predict(penguins_predictor, copy, tmp_path, chunk_rows=7) == want


def test_an_excel_sheet_without_a_header_line_is_read_in_the_training_columns(
    penguins_predictor: Predictor, penguins_csv: Path, tmp_path: Path
) -> None:
    with_header = format_copy(penguins_csv, tmp_path / "a.xlsx")
    without = tmp_path / "b.xlsx"
    import pandas as pd

    pd.read_csv(penguins_csv).to_excel(without, index=False, header=False, engine="xlsxwriter")
    assert _predict(penguins_predictor, without, tmp_path) == _predict(
        penguins_predictor, with_header, tmp_path
    )


def test_a_bad_json_lines_value_names_its_line(
    penguins_predictor: Predictor, penguins_csv: Path, tmp_path: Path
) -> None:
    copy = format_copy(penguins_csv, tmp_path / "rows.jsonl")
    lines = copy.read_text().splitlines()
    record = json.loads(lines[40])
    record["bill_length_mm"] = "long"
    lines[40] = json.dumps(record)
    copy.write_text("\n\n" + "\n".join(lines) + "\n")  # two blank lines first: counted
    with pytest.raises(InputValidationError, match=r"column 'bill_length_mm', line 43: expected"):
        _predict(penguins_predictor, copy, tmp_path, chunk_rows=10)


def test_a_bad_excel_cell_names_its_sheet_row(
    penguins_predictor: Predictor, penguins_csv: Path, tmp_path: Path
) -> None:
    import pandas as pd

    frame = pd.read_csv(penguins_csv)
    frame["flipper_length_mm"] = frame["flipper_length_mm"].astype(object)
    frame.loc[9, "flipper_length_mm"] = "wide"  # the 10th row: sheet row 11, under the header
    path = tmp_path / "rows.xlsx"
    frame.to_excel(path, index=False, engine="xlsxwriter")
    with pytest.raises(InputValidationError, match=r"column 'flipper_length_mm', line 11: "):
        _predict(penguins_predictor, path, tmp_path)


def test_a_missing_feature_names_the_column_it_was_probably_meant_to_be(
    penguins_predictor: Predictor, tmp_path: Path
) -> None:
    path = tmp_path / "rows.json"
    row = {
        "island": "Biscoe",
        "bill_length_mm": 40.1,
        "bill_depth_mm": 18.9,
        "Flipper_length": 188,
        "body_mass_g": 4300,
        "sex": "male",
        "year": 2008,
    }
    path.write_text(json.dumps([row]))
    with pytest.raises(
        InputValidationError, match=r"missing feature\(s\) 'flipper_length_mm' \(did you mean "
    ):
        _predict(penguins_predictor, path, tmp_path)
