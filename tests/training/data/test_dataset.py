"""Datasets: built-ins, local CSV/Parquet files, checksummed URLs, and every way they can fail."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from support import FileServer

from mlcontainer.core.errors import DatasetError
from mlcontainer.training.data.dataset import QUANTITY_VALUES, load_dataset
from mlcontainer.training.data.intake import read_table
from mlcontainer.training.data.sources import BUILTIN_DATASETS, looks_like_path

TITANIC_SHA256 = "81787d320d7f7b03df935e91de8bd19e11d45c5bbcab86ef4d4a76dc91b7d4f2"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _small_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "size": [1.0, 2.5, None, 4.0, 5.5, 6.0, 7.5, 8.0],
            "colour": ["red", "blue", "red", None, "blue", "red", "blue", "green"],
            "flag": [True, False, True, False, True, False, True, False],
            "label": ["a", "b", "a", "b", "a", "b", "a", "b"],
        }
    )


@pytest.mark.parametrize("name", list(BUILTIN_DATASETS))
def test_builtin_dataset_loads_with_schema_matching_its_columns(name: str) -> None:
    ds = load_dataset(name)
    assert ds.schema.names == list(ds.X.columns)
    assert len(ds.X) == len(ds.y) > 100
    if ds.schema.is_regression:
        assert ds.schema.classes == ()
        assert ds.y.dtype == float
    else:
        assert set(ds.y.unique()) == set(ds.schema.classes)
        assert len(ds.schema.classes) >= 2
    assert len(ds.fingerprint) == 64
    assert ds.source == f"builtin:{name}"


def test_penguins_has_categorical_and_nullable_features() -> None:
    ds = load_dataset("penguins")
    kinds = {f.name: f for f in ds.schema.features}
    assert kinds["island"].kind == "categorical"
    assert kinds["island"].categories == ("Biscoe", "Dream", "Torgersen")
    assert kinds["bill_length_mm"].kind == "numeric"
    assert kinds["bill_length_mm"].nullable
    assert ds.schema.classes == ("Adelie", "Chinstrap", "Gentoo")


def test_digits_labels_are_integers() -> None:
    ds = load_dataset("digits")
    assert ds.schema.classes == tuple(range(10))
    assert all(type(c) is int for c in ds.schema.classes)


def test_fingerprint_is_stable_and_content_based(tmp_path: Path) -> None:
    frame = _small_frame()
    frame.to_csv(tmp_path / "one.csv", index=False)
    frame.to_csv(tmp_path / "two.csv", index=False)
    changed = frame.copy()
    changed.loc[0, "size"] = 99.0
    changed.to_csv(tmp_path / "three.csv", index=False)
    one = load_dataset(str(tmp_path / "one.csv"), target="label")
    two = load_dataset(str(tmp_path / "two.csv"), target="label")
    three = load_dataset(str(tmp_path / "three.csv"), target="label")
    assert one.fingerprint == two.fingerprint != three.fingerprint


def test_local_csv_is_typed_by_column(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    _small_frame().to_csv(path, index=False)
    ds = load_dataset(str(path), target="label")
    kinds = {f.name: f.kind for f in ds.schema.features}
    assert kinds == {"size": "numeric", "colour": "categorical", "flag": "boolean"}
    assert ds.schema.target == "label"
    assert ds.schema.classes == ("a", "b")
    assert ds.name == "small"


def test_local_parquet_gives_the_same_data_as_csv(tmp_path: Path) -> None:
    frame = _small_frame()
    frame.to_csv(tmp_path / "small.csv", index=False)
    frame.to_parquet(tmp_path / "small.parquet", index=False)
    from_csv = load_dataset(str(tmp_path / "small.csv"), target="label")
    from_parquet = load_dataset(str(tmp_path / "small.parquet"), target="label")
    assert from_parquet.schema == from_csv.schema
    assert from_parquet.fingerprint == from_csv.fingerprint


def test_rows_without_a_target_are_dropped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text("x,y\n1,a\n2,\n3,b\n4,a\n5,b\n")
    ds = load_dataset(str(path), target="y")
    assert len(ds.X) == 4
    assert ds.dropped_rows == 1
    assert "dropped 1 rows" in ds.notes[0]


def test_local_file_with_matching_sha256_loads_and_wrong_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    _small_frame().to_csv(path, index=False)
    assert load_dataset(str(path), target="label", sha256=_sha256(path)).schema.target == "label"
    with pytest.raises(DatasetError, match="expected 0000"):
        load_dataset(str(path), target="label", sha256="0" * 64)


def test_unknown_dataset_name_lists_the_builtins() -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset("winez")
    message = info.value.message
    assert "'winez'" in message
    for name in BUILTIN_DATASETS:
        assert name in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DatasetError, match=r"not found: .*nope\.csv"):
        load_dataset(str(path), target="y")


def test_folder_instead_of_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "looks_like.csv"
    folder.mkdir()
    with pytest.raises(DatasetError, match="is a folder"):
        load_dataset(str(folder), target="y")


def test_file_of_invalid_bytes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage\n\x80\x81\n")
    with pytest.raises(DatasetError, match=r"cannot read .*binary\.csv"):
        load_dataset(str(path), target="y")


def test_invalid_parquet_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match=r"not a valid Parquet file"):
        load_dataset(str(path), target="b")


@pytest.mark.parametrize("name", ["data.txt", "data.tar.gz", "data.parquet.zst"])
def test_unsupported_suffix_lists_the_valid_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    shown = name.split(".", 1)[1]
    with pytest.raises(DatasetError, match=rf"unsupported file type '\.{shown}'.*\.csv.*\.xlsx"):
        read_table(path)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DatasetError, match="the file is empty"):
        load_dataset(str(path), target="y")


def test_header_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b,y\n")
    with pytest.raises(DatasetError, match="header but no data rows"):
        load_dataset(str(path), target="y")


def test_unknown_target_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    _small_frame().to_csv(path, index=False)
    with pytest.raises(DatasetError) as info:
        load_dataset(str(path), target="lable")
    assert "'lable'" in info.value.message
    for column in ("size", "colour", "flag", "label"):
        assert repr(column) in info.value.message


def test_file_without_target_asks_for_one_and_lists_columns(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    _small_frame().to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"--target is required.*'colour'"):
        load_dataset(str(path))


def test_one_class_target_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("x,y\n1,a\n2,a\n3,a\n")
    with pytest.raises(DatasetError, match=r"single class \('a'\)"):
        load_dataset(str(path), target="y")


def _numbers(tmp_path: Path, values: list[object], name: str = "y") -> str:
    path = tmp_path / "t.csv"
    rows = "\n".join(f"{i % 7},{v}" for i, v in enumerate(values))  # x: not an ID
    path.write_text(f"x,{name}\n{rows}\n")
    return str(path)


def test_a_non_integer_target_is_regression_saying_why_and_how_to_override(
    tmp_path: Path,
) -> None:
    ds = load_dataset(_numbers(tmp_path, [0.5, 1.5, 2.25, 3.0, 4.75, 5.0]), target="y")
    assert ds.schema.task == "regression"
    assert ds.schema.classes == ()
    assert ds.y.tolist() == [0.5, 1.5, 2.25, 3.0, 4.75, 5.0]
    (line,) = [n for n in ds.notes if n.startswith("Task: ")]
    assert line == (
        "Task: regression (target 'y' holds non-integer numbers, 6 distinct values); use "
        "--task classification to treat them as classes"
    )


def test_many_distinct_whole_numbers_are_a_quantity(tmp_path: Path) -> None:
    prices = [5_000 + 37 * i for i in range(QUANTITY_VALUES + 1)] * 2  # 21 values, 50% of rows
    ds = load_dataset(_numbers(tmp_path, prices), target="y")
    assert ds.schema.task == "regression"
    assert "holds 21 distinct whole numbers: more than 20 and more than 5% of the 42 rows" in (
        " ".join(ds.notes)
    )


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ([3, 4, 5, 6, 7, 8] * 5, "holds 6 distinct whole numbers, taken as classes"),
        # 21 distinct values, but in 1,000 rows: 2.1% of them, classes (a rating, a code)
        ([i % 21 for i in range(1_000)], "holds 21 distinct whole numbers, taken as classes"),
        (["yes", "no"] * 5, "holds text or true/false values"),
        (["true", "false"] * 5, "holds text or true/false values"),
    ],
    ids=["few-whole-numbers", "many-rows-per-value", "text", "booleans"],
)
def test_a_target_of_classes_stays_classification(
    tmp_path: Path, values: list[object], why: str
) -> None:
    ds = load_dataset(_numbers(tmp_path, values), target="y")
    assert ds.schema.task == "classification"
    (line,) = [n for n in ds.notes if n.startswith("Task: ")]
    assert why in line
    assert line.endswith("use --task regression to predict them as a number") or (
        "true/false" in line and line.endswith("use --task regression for a number")
    )


def test_the_task_can_be_overridden_both_ways(tmp_path: Path) -> None:
    quality = _numbers(tmp_path, [3, 4, 5, 6, 7, 8] * 5)
    ds = load_dataset(quality, target="y", task="regression")
    assert ds.schema.task == "regression"
    assert ds.y.dtype == float
    assert not [n for n in ds.notes if n.startswith("Task: ")]  # asked for: nothing to explain
    prices = _numbers(tmp_path, [1_000 + 10 * i for i in range(60)])
    ds = load_dataset(prices, target="y", task="classification")
    assert ds.schema.task == "classification"
    assert len(ds.schema.classes) == 60


def test_classes_of_non_integer_numbers_are_refused_pointing_at_regression(
    tmp_path: Path,
) -> None:
    ratios = _numbers(tmp_path, [0.5, 1.5, 2.5] * 10)
    with pytest.raises(DatasetError) as caught:
        load_dataset(ratios, target="y", task="classification")
    assert str(caught.value).endswith(
        "holds non-integer numbers (3 distinct values), and classes must be text or whole "
        "numbers; use --task regression (or the default --task auto) to predict it as a number"
    )


def test_regression_on_a_text_target_names_offending_values(tmp_path: Path) -> None:
    path = _numbers(tmp_path, [1.5, 2.5, "high", 3.5, "low", "n/a?"])
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, target="y", task="regression")
    message = str(caught.value)
    assert "--task regression needs a numeric target" in message
    assert "'y' of " in message
    assert "'high', 'low', 'n/a?'" in message
    assert "use --task classification, or another target" in message


def test_a_regression_target_with_missing_values_drops_those_rows_with_a_note(
    tmp_path: Path,
) -> None:
    ds = load_dataset(_numbers(tmp_path, [0.5, "", 2.25, "?", 4.75, 5.5]), target="y")
    assert ds.schema.task == "regression"
    assert ds.y.tolist() == [0.5, 2.25, 4.75, 5.5]
    assert ds.dropped_rows == 2
    assert "dropped 2 rows with no value in target column 'y'" in ds.notes


def test_the_builtin_diabetes_data_is_regression_with_a_target_summary() -> None:
    ds = load_dataset("diabetes")
    assert ds.schema.task == "regression"
    summary = ds.summary()
    stats = summary["target_summary"]
    assert stats["min"] == 25.0
    assert stats["max"] == 346.0
    assert stats["mean"] == pytest.approx(152.13, abs=0.01)
    assert summary["class_counts"] == {}


def test_target_as_only_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "only.csv"
    path.write_text("y\na\nb\n")
    with pytest.raises(DatasetError, match="no feature columns"):
        load_dataset(str(path), target="y")


@pytest.mark.parametrize(
    ("spec", "is_path"),
    [
        ("iris", False),
        ("data/x.csv", True),
        ("x.parquet", True),
        ("X.CSV", True),
        ("wine", False),
        ("x.xlsx", True),
        ("x.jsonl", True),
        ("x.csv.gz", True),
        ("x.zst", True),
        ("notes.txt", False),
    ],
)
def test_looks_like_path_tells_files_from_names(spec: str, is_path: bool) -> None:
    assert looks_like_path(spec) is is_path


def test_an_existing_file_of_another_type_is_a_path_refused_for_its_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("a,y\n1,x\n")
    assert looks_like_path("notes.txt")
    with pytest.raises(DatasetError, match=r"unsupported file type '\.txt'"):
        load_dataset("notes.txt", target="y")


# --- URLs, served by a real HTTP server on 127.0.0.1 -------------------------------------------


def test_url_with_right_sha256_is_downloaded_once(file_server: FileServer, tmp_path: Path) -> None:
    path = file_server.root / "small.csv"
    _small_frame().to_csv(path, index=False)
    cache = tmp_path / "cache"
    url = file_server.url("small.csv")
    first = load_dataset(url, target="label", sha256=_sha256(path), cache_dir=cache)
    second = load_dataset(url, target="label", sha256=_sha256(path), cache_dir=cache)
    assert file_server.hits == {"/small.csv": 1}
    assert first.fingerprint == second.fingerprint
    assert first.source == url
    assert [p.name for p in cache.iterdir()] == [f"{_sha256(path)[:12]}-small.csv"]


def test_url_with_wrong_sha256_is_refused_and_not_kept(
    file_server: FileServer, tmp_path: Path
) -> None:
    _small_frame().to_csv(file_server.root / "small.csv", index=False)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"download of .*small\.csv was refused"):
        load_dataset(
            file_server.url("small.csv"), target="label", sha256="ab" * 32, cache_dir=cache
        )
    assert file_server.hits == {"/small.csv": 1}
    assert not cache.exists() or list(cache.iterdir()) == []


def test_url_without_sha256_is_refused_before_downloading(
    file_server: FileServer, tmp_path: Path
) -> None:
    _small_frame().to_csv(file_server.root / "small.csv", index=False)
    with pytest.raises(DatasetError, match="--sha256 is required"):
        load_dataset(file_server.url("small.csv"), target="label", cache_dir=tmp_path / "c")
    assert file_server.hits == {}


def test_malformed_sha256_is_refused(file_server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="64 hexadecimal characters"):
        load_dataset(
            file_server.url("x.csv"), target="y", sha256="not-a-hash", cache_dir=tmp_path / "c"
        )
    assert file_server.hits == {}


def test_url_that_is_not_found_is_a_clear_error(file_server: FileServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"could not download .*missing\.csv.*404"):
        load_dataset(file_server.url("missing.csv"), target="y", sha256="ab" * 32, cache_dir=cache)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_real_titanic_over_http_with_its_published_checksum(
    shared_datasets: Path, file_server: FileServer, tmp_path: Path
) -> None:
    (file_server.root / "titanic.csv").write_bytes((shared_datasets / "titanic.csv").read_bytes())
    ds = load_dataset(
        file_server.url("titanic.csv"),
        target="survived",
        sha256=TITANIC_SHA256,
        cache_dir=tmp_path / "cache",
    )
    assert len(ds.X) == 891
    assert ds.schema.classes == (0, 1)
    kinds = {f.name: f.kind for f in ds.schema.features}
    assert kinds["age"] == "numeric"
    assert kinds["embarked"] == "categorical"
    assert kinds["adult_male"] == "boolean"
    assert {f.name for f in ds.schema.features if f.nullable} >= {"age", "deck", "embarked"}


def test_sha256_with_a_builtin_dataset_is_refused_not_ignored() -> None:
    with pytest.raises(
        DatasetError, match=r"--sha256 applies to a downloaded or local file.*'iris'"
    ):
        load_dataset("iris", sha256="0" * 64)


def test_classes_too_small_to_split_and_fold_are_left_out_with_a_warning(tmp_path: Path) -> None:
    from mlcontainer.training.data.dataset import ClassRule

    counts = {"a": 40, "b": 30, "tiny": 3, "one": 1}
    rows = [f"{i},{c}\n" for c, n in counts.items() for i in range(n)]
    path = tmp_path / "rare.csv"
    path.write_text("x,y\n" + "".join(rows))
    ds = load_dataset(str(path), target="y", class_rule=ClassRule(cv=5, test_size=0.2))
    assert ds.schema.classes == ("a", "b")
    assert ds.excluded_classes == {"tiny": 3, "one": 1}
    assert ds.summary()["excluded_classes"] == {"tiny": 3, "one": 1}
    note = next(n for n in ds.notes if "left out" in n)
    assert "'tiny' (3 rows), 'one' (1 rows)" in note
    assert "fewer than 7 rows each" in note
    assert "--min-class-rows" in note
    assert len(ds.X) == 70


def test_the_row_threshold_follows_cv_and_test_size_unless_given() -> None:
    from mlcontainer.training.data.dataset import ClassRule

    assert ClassRule(cv=5, test_size=0.2).needed() == 7
    assert ClassRule(cv=3, test_size=0.25).needed() == 4
    assert ClassRule(cv=5, test_size=0.2, min_rows=3).needed() == 3
