"""Real-world CSV intake: spaces, missing-value markers, dropped columns, suspicious columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from support import FORMAT_SUFFIXES, format_copy

from mlcontainer.core.artifacts import TRUSTED_TYPES
from mlcontainer.core.cells import DEFAULT_NA_VALUES
from mlcontainer.core.errors import DatasetError
from mlcontainer.core.labels import label_array
from mlcontainer.training.data.dataset import load_dataset, prepare
from mlcontainer.training.data.intake import read_table
from mlcontainer.training.search.models import MAX_CATEGORIES, build_pipeline


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_table_strips_spaces_and_reads_question_mark_as_missing(tmp_path: Path) -> None:
    path = _write(tmp_path, "age , job,label\n39, Clerk ,a\n ?, ?,b\n50,  Chef,a\n")
    frame = read_table(path).frame
    assert list(frame.columns) == ["age", "job", "label"]
    assert frame["age"].isna().tolist() == [False, True, False]
    assert pd.api.types.is_numeric_dtype(frame["age"])
    assert frame["job"].tolist()[0] == "Clerk"
    assert pd.isna(frame["job"].iloc[1])
    assert frame["job"].iloc[2] == "Chef"


def test_read_table_tolerates_a_trailing_blank_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "x,label\n1,a\n2,b\n\n")
    assert len(read_table(path).frame) == 2


def test_na_values_replace_the_default_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "x,y,label\n-,?,a\n1,2,b\n")
    frame = read_table(path, na_values=("-",)).frame
    assert pd.isna(frame["x"].iloc[0])
    assert frame["y"].iloc[0] == "?"
    assert "?" in DEFAULT_NA_VALUES


def test_drop_removes_the_named_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "id,x,label\n1,5,a\n2,6,b\n3,7,a\n4,8,b\n")
    ds = load_dataset(str(path), target="label", drop=("id",))
    assert ds.schema.names == ["x"]
    assert ds.summary()["dropped_columns"] == ["id"]


def test_drop_of_an_unknown_column_names_the_valid_ones(tmp_path: Path) -> None:
    path = _write(tmp_path, "id,x,label\n1,5,a\n2,6,b\n")
    with pytest.raises(DatasetError, match=r"'nope'.*columns: 'id', 'x', 'label'"):
        load_dataset(str(path), target="label", drop=("nope",))


def test_drop_refuses_the_target(tmp_path: Path) -> None:
    path = _write(tmp_path, "x,label\n5,a\n6,b\n")
    with pytest.raises(DatasetError, match="target column 'label'"):
        load_dataset(str(path), target="label", drop=("label",))


def _frame(n: int = 200, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = rng.choice(["yes", "no"], size=n)
    return pd.DataFrame(
        {
            "noise": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "label": label,
        }
    )


def test_a_column_restating_the_target_is_warned_as_a_leak() -> None:
    frame = _frame()
    frame["verdict"] = frame["label"].map({"yes": "Y", "no": "N"})
    ds = prepare(frame, target="label", name="t", source="t")
    leaks = [w for w in ds.warnings if "likely leak" in w]
    assert len(leaks) == 1
    assert "'verdict'" in leaks[0]
    assert "--keep verdict keeps it" in leaks[0]
    assert "verdict" not in ds.schema.names


def test_a_numeric_column_that_thresholds_the_target_is_warned_as_a_leak() -> None:
    frame = _frame(400)
    frame["score"] = np.where(frame["label"] == "yes", 1.0, -1.0) + np.linspace(0, 0.5, 400)
    ds = prepare(frame, target="label", name="t", source="t")
    assert any("'score'" in w and "likely leak" in w for w in ds.warnings)


def test_id_like_columns_are_left_out_and_constant_ones_warned() -> None:
    frame = _frame()
    frame["row_id"] = np.arange(len(frame))
    frame["name"] = [f"person {i}" for i in range(len(frame))]
    frame["source"] = "survey"
    ds = prepare(frame, target="label", name="t", source="t")
    text = "\n".join(ds.warnings)
    assert "left out column 'row_id': it looks like an ID" in text
    assert "left out column 'name': it looks like an ID" in text
    assert ds.schema.names == ["noise", "colour", "source"]
    assert "'source' is constant ('survey' in every row)" in text
    assert "'noise'" not in text
    assert "'colour'" not in text


def test_ordinary_features_raise_no_warning() -> None:
    for name in ("wine", "iris", "breast_cancer", "penguins"):
        assert load_dataset(name).warnings == (), name


def test_many_valued_text_column_is_one_hot_encoded_within_max_categories() -> None:
    rng = np.random.default_rng(1)
    n = 600
    frame = pd.DataFrame(
        {
            "ticket": [f"T{int(v)}" for v in rng.integers(0, 300, size=n)],
            "label": rng.choice(["a", "b"], size=n),
        }
    )
    ds = prepare(frame, target="label", name="t", source="t")
    pipeline = build_pipeline("logistic_regression", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    width = pipeline.named_steps["preprocess"].transform(ds.X.head()).shape[1]
    assert width <= MAX_CATEGORIES
    # An unseen ticket goes to the shared "infrequent" column instead of failing.
    unseen = pd.DataFrame({"ticket": ["never seen"]})
    assert pipeline.predict_proba(unseen).shape == (1, 2)


@pytest.mark.parametrize("model", ["logistic_regression", "random_forest", "k_nearest_neighbors"])
def test_bounded_one_hot_pipelines_round_trip_through_skops_with_the_allowlist(
    model: str,
) -> None:
    rng = np.random.default_rng(2)
    n = 300
    frame = pd.DataFrame(
        {
            "city": [f"c{int(v)}" for v in rng.integers(0, 80, size=n)],
            "x": rng.normal(size=n),
            "label": rng.choice(["a", "b"], size=n),
        }
    )
    ds = prepare(frame, target="label", name="t", source="t")
    pipeline = build_pipeline(model, ds.schema, random_state=0).fit(ds.X, label_array(ds.y))
    data = skops.io.dumps(pipeline)
    untrusted = set(skops.io.get_untrusted_types(data=data))
    assert untrusted <= TRUSTED_TYPES
    loaded = skops.io.loads(data, trusted=sorted(untrusted))
    np.testing.assert_array_equal(loaded.predict_proba(ds.X), pipeline.predict_proba(ds.X))


def test_titanic_alive_column_is_warned_as_a_leak(shared_datasets: Path) -> None:
    ds = load_dataset(str(shared_datasets / "titanic.csv"), target="survived")
    leaks = [w for w in ds.warnings if "likely leak" in w]
    assert [w.split("'")[1] for w in leaks] == ["alive"]
    assert ds.X["age"].isna().sum() == 177


def test_titanic_without_alive_has_no_leak_warning(shared_datasets: Path) -> None:
    ds = load_dataset(str(shared_datasets / "titanic.csv"), target="survived", drop=("alive",))
    assert "alive" not in ds.schema.names
    assert not [w for w in ds.warnings if "likely leak" in w]


def test_adult_question_marks_are_missing_and_spaces_stripped(shared_datasets: Path) -> None:
    ds = load_dataset(str(shared_datasets / "adult.csv"), target="income")
    assert len(ds.X) == 32_561  # the trailing blank line is not a row
    missing = ds.X[["workclass", "occupation", "native_country"]].isna().sum().to_dict()
    assert missing == {"workclass": 1836, "occupation": 1843, "native_country": 583}
    assert ds.schema.classes == ("<=50K", ">50K")
    assert "Private" in set(ds.X["workclass"].dropna())
    assert not any(str(v).startswith(" ") for v in ds.X["workclass"].dropna().unique())
    assert pd.api.types.is_numeric_dtype(ds.X["age"])


def test_train_cli_shows_and_stores_the_leak_warning(shared_datasets: Path, tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from mlcontainer.cli import main

    out = tmp_path / "model"
    args = ["train", "-d", str(shared_datasets / "titanic.csv"), "-t", "survived"]
    args += ["-m", "naive_bayes", "--cv", "3", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Warning: left out column 'alive': it alone predicts the target 'survived'" in " ".join(
        result.output.split()
    )
    manifest = json.loads((out / "model.json").read_text())
    assert any("'alive'" in w for w in manifest["dataset"]["warnings"])


def test_train_cli_drop_and_na_values_options(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from mlcontainer.cli import main

    rng = np.random.default_rng(3)
    n = 120
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "x": [("-" if i % 10 == 0 else f"{v:.3f}") for i, v in enumerate(rng.normal(size=n))],
            "label": rng.choice(["a", "b"], size=n),
        }
    )
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "model"
    args = ["train", "-d", str(path), "-t", "label", "--drop", "id", "--na-values", "-"]
    args += ["-m", "naive_bayes", "--cv", "3", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "model.json").read_text())
    assert [f["name"] for f in manifest["schema"]["features"]] == ["x"]
    assert manifest["schema"]["features"][0]["type"] == "numeric"
    assert manifest["schema"]["features"][0]["nullable"] is True


# --- Headerless files, the header rules and the recipe ------------------------------------


def _numbers(rows: int = 40, *, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        x, z = rng.normal(size=2)
        lines.append(f"{x:.3f},{z:.3f},{i % 7},{'up' if x > 0 else 'down'}")
    return "\n".join(lines) + "\n"


def test_a_first_row_of_numbers_over_numeric_columns_is_data_named_column_1_on(
    tmp_path: Path,
) -> None:
    table = read_table(_write(tmp_path, _numbers()))
    assert list(table.frame.columns) == ["column_1", "column_2", "column_3", "column_4"]
    assert len(table.frame) == 40  # the first row is data, not names
    assert table.recipe.header is False
    assert len(table.notes) == 1
    assert "has no header line" in table.notes[0]
    assert "column_1 … column_4" in table.notes[0]
    assert "--header" in table.notes[0]


def test_a_header_over_numeric_columns_is_read_as_names(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path, "x,z,n,label\n" + _numbers()))
    assert list(table.frame.columns) == ["x", "z", "n", "label"]
    assert len(table.frame) == 40
    assert table.recipe.header is True
    assert table.notes == []


def test_a_text_first_row_repeating_a_value_below_is_data(tmp_path: Path) -> None:
    rows = "".join(f"{c},{s}\n" for c in ("red", "blue") for s in ("small", "big"))
    table = read_table(_write(tmp_path, "red,small\n" + rows * 3))
    assert table.recipe.header is False
    assert len(table.frame) == 13


@pytest.mark.parametrize(("header", "rows"), [(True, 39), (False, 40)])
def test_header_options_override_the_guess(tmp_path: Path, header: bool, rows: int) -> None:
    table = read_table(_write(tmp_path, _numbers()), header=header)
    assert len(table.frame) == rows
    assert table.recipe.header is header


def test_columns_name_a_headerless_file_and_the_target_can_be_one_of_them(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, _numbers())
    ds = load_dataset(str(path), target="side", columns=["x", "z", "n", "side"])
    assert ds.schema.names == ["x", "z", "n"]
    assert ds.schema.classes == ("down", "up")
    assert len(ds.X) == 40
    assert ds.recipe.columns == ["x", "z", "n", "side"]
    positional = load_dataset(str(path), target="column_4")
    assert positional.schema.names == ["column_1", "column_2", "column_3"]


def test_columns_of_the_wrong_count_are_refused_giving_both_counts(tmp_path: Path) -> None:
    path = _write(tmp_path, _numbers())
    with pytest.raises(DatasetError, match=r"--columns gives 3 names, but the input has 4 columns"):
        read_table(path, columns=["x", "z", "side"])


def test_a_header_with_repeated_and_empty_names_is_reported_not_silently_renamed(
    tmp_path: Path,
) -> None:
    table = read_table(_write(tmp_path, "x,x,,label\n" + _numbers()))
    assert list(table.frame.columns) == ["x", "x_2", "column_3", "label"]
    assert "the header names 'x' more than once: column 2 is 'x_2'" in table.notes
    assert "column 3 has no name in the header: it is called 'column_3'" in table.notes


def test_a_semicolon_file_is_read_with_its_delimiter(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path, "x;label\n1;a\n2;b\n3;a\n"))
    assert list(table.frame.columns) == ["x", "label"]
    assert table.recipe.delimiter == ";"
    assert table.frame["x"].tolist() == [1, 2, 3]


def test_single_quoted_values_are_unwrapped_with_a_note(tmp_path: Path) -> None:
    text = "a,colour,label\n" + "".join(
        f"{i},'{c}','{lab}'\n"
        for i, (c, lab) in enumerate([("red", -1), ("blue", 1), ("red", 1), ("blue", -1)] * 5)
    )
    path = _write(tmp_path, text)
    ds = load_dataset(str(path), target="label")
    assert ds.schema.classes == (-1, 1)  # '-1' as ARFF writes it: the number -1
    assert sorted(set(ds.X["colour"])) == ["blue", "red"]
    assert sorted(ds.recipe.unquote) == ["colour", "label"]
    assert any("single quotes" in n for n in ds.notes)


def test_an_unterminated_quote_in_a_training_file_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'x,label\n1,a\n2,"b\n3,a\n4,b\n')
    with pytest.raises(DatasetError, match=r"line 3: a quoted field starts on this line"):
        load_dataset(str(path), target="label")


def test_a_whole_number_id_with_a_few_repeats_is_flagged_like_unique_ones() -> None:
    frame = _frame()
    n = len(frame)
    ids = np.arange(1, n + 1)
    ids[5:8] = ids[4]  # 3 repeats: not unique, still an ID
    frame["patient"] = np.random.default_rng(0).permutation(ids)
    ds = prepare(frame, target="label", name="t", source="t")
    assert any("'patient': it looks like an ID" in w for w in ds.warnings)


def test_the_recipe_is_kept_in_the_manifest(tmp_path: Path) -> None:
    import json

    from mlcontainer.training.options import TrainOptions
    from mlcontainer.training.workflow import run_training

    path = _write(tmp_path, _numbers(60))
    out = tmp_path / "model"
    run_training(
        TrainOptions(
            dataset=str(path), target="column_4", models=("naive_bayes",), cv=2, output=out
        )
    )
    intake = json.loads((out / "model.json").read_text())["intake"]
    assert intake["header"] is False
    assert intake["delimiter"] == ","
    assert intake["columns"] == ["column_1", "column_2", "column_3", "column_4"]
    assert intake["target"] == "column_4"
    assert "?" in intake["na_values"]


# --- the files people have: Excel, JSON, JSON Lines, compressed CSV -----------------------------


@pytest.mark.parametrize("suffix", FORMAT_SUFFIXES)
@pytest.mark.parametrize(
    ("name", "target", "header"),
    [("titanic.csv", "survived", True), ("pima-indians-diabetes.csv", "column_9", False)],
)
def test_every_file_type_trains_on_what_its_csv_gives(
    shared_datasets: Path, tmp_path: Path, name: str, target: str, header: bool, suffix: str
) -> None:
    source = shared_datasets / name
    copy = format_copy(source, tmp_path / f"data{suffix}", header=header)
    want = load_dataset(str(source), target=target)
    got = load_dataset(str(copy), target=target)
    assert got.schema == want.schema
    assert got.fingerprint == want.fingerprint  # the same values and types, row for row
    assert got.recipe.columns == want.recipe.columns
    assert got.recipe.header == want.recipe.header or suffix.startswith(".json")


def test_a_json_column_with_text_is_read_as_csv_text(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [
        '{"n": 1, "m": "?", "b": true, "y": "a"}',
        '{"n": 2.5, "m": " 3 ", "b": null, "y": "b"}',
        '{"n": null, "m": 4, "y": "a"}',  # "b" absent: missing
        '{"n": 4, "m": "5", "b": false, "y": "b"}',
    ]
    path.write_text("\n".join(rows) + "\n")
    table = read_table(path)
    frame = table.frame
    assert frame["n"].tolist()[:2] == [1.0, 2.5]
    assert frame["m"].tolist()[1:] == [3.0, 4.0, 5.0]  # "?" missing, spaces gone, numbers
    assert pd.isna(frame["m"].iloc[0])
    assert frame["b"].dtype == "boolean"
    assert table.recipe.source_format == "jsonl"
    assert table.recipe.numeric_text == ["m"]


@pytest.mark.parametrize("option", [{"header": True}, {"columns": ["a", "y"]}])
def test_header_options_are_refused_for_json_that_names_its_columns(
    tmp_path: Path, option: dict[str, object]
) -> None:
    path = _write(tmp_path, '[{"a": 1, "y": "x"}]', "d.json")
    with pytest.raises(DatasetError, match=r"applies to CSV and Excel files"):
        read_table(path, **option)  # type: ignore[arg-type]


def test_a_bad_json_record_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[\n {"a": 1, "y": "x"},\n {"a": [2], "y": "z"}\n]\n', "d.json")
    with pytest.raises(DatasetError, match=r"d\.json: line 3: column 'a' holds a list"):
        load_dataset(str(path), target="y")


def test_an_unknown_target_names_the_close_column(shared_datasets: Path) -> None:
    with pytest.raises(DatasetError, match=r"'incom' is not in .*\(did you mean 'income'\?\)"):
        load_dataset(str(shared_datasets / "adult.csv"), target="incom")
