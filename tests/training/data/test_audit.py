"""Leaks and IDs are left out of training by default, each in one line naming `--keep`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcontainer.core.errors import DatasetError
from mlcontainer.training.data.dataset import load_dataset, prepare


def _titanic_like(n: int = 300, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    survived = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "age": rng.uniform(1, 80, n).round(),
            "sex": rng.choice(["male", "female"], n),
            "alive": np.where(survived == 1, "yes", "no"),
            "survived": survived,
        }
    )


def _crashes_like(n: int = 300, *, seed: int = 1) -> pd.DataFrame:
    """car_crashes: columns written as the target (crashes per billion miles) times a share."""
    rng = np.random.default_rng(seed)
    total = rng.uniform(5, 24, n)
    return pd.DataFrame(
        {
            "speeding": total * rng.uniform(0.1, 0.4, n),
            "alcohol": total * rng.uniform(0.1, 0.4, n),
            # Smaller than the target in every row, but not a share of it: it grows slower.
            "premium_hundreds": 2.0 + np.sqrt(total) * rng.uniform(0.9, 1.1, n),
            "ins_losses": rng.uniform(80, 200, n) + total,
            "total": total,
        }
    )


def test_a_column_restating_the_target_is_left_out_in_one_line_naming_keep() -> None:
    ds = prepare(_titanic_like(), target="survived", name="t", source="t")
    assert ds.schema.names == ["age", "sex"]
    assert list(ds.X.columns) == ["age", "sex"]
    (line,) = ds.warnings
    assert line.startswith("left out column 'alive': it alone predicts the target 'survived'")
    assert line.endswith("--keep alive keeps it")
    assert ds.recipe.left_out == {"alive": "leak"}
    assert ds.recipe.ignored()["alive"] == "left out of training (a likely leak; --keep keeps it)"


def test_keep_trains_on_a_flagged_column_and_says_so() -> None:
    ds = prepare(_titanic_like(), target="survived", name="t", source="t", keep=("alive",))
    assert "alive" in ds.schema.names
    assert ds.warnings[0].endswith("kept, as --keep alive asks")
    assert ds.recipe.left_out == {}


def test_regression_columns_that_are_the_target_times_a_share_are_left_out() -> None:
    ds = prepare(_crashes_like(), target="total", name="t", source="t")
    assert ds.schema.names == ["premium_hundreds", "ins_losses"]
    assert [w.split("'")[1] for w in ds.warnings] == ["speeding", "alcohol"]
    assert "is a share (0.1" in ds.warnings[0]


def test_a_regression_column_that_follows_the_target_in_rank_is_left_out() -> None:
    # 60 rows make 2 bins for the group means (25 rows each at least): the ranks catch it.
    frame = _crashes_like(60)[["ins_losses", "total"]]
    frame["log_total"] = np.log(frame["total"])
    ds = prepare(frame, target="total", name="t", source="t")
    assert ds.schema.names == ["ins_losses"]
    assert "follows the ranks of (Spearman's rho" in ds.warnings[0]


def test_keep_naming_no_feature_is_refused_with_the_closest_name() -> None:
    with pytest.raises(DatasetError, match=r"--keep names column\(s\) 'alvie' \(did you mean"):
        prepare(_titanic_like(), target="survived", name="t", source="t", keep=("alvie",))


def test_a_file_whose_every_feature_is_left_out_is_refused_naming_keep() -> None:
    frame = _titanic_like()[["alive", "survived"]]
    with pytest.raises(DatasetError, match=r"every feature column of t looks like a leak.*--keep"):
        prepare(frame, target="survived", name="t", source="t")


def test_real_files_lose_only_their_leaks(shared_datasets: Path) -> None:
    titanic = load_dataset(str(shared_datasets / "titanic.csv"), target="survived")
    assert "alive" not in titanic.schema.names
    assert len(titanic.schema.names) == 13
    auto = load_dataset(str(shared_datasets / "auto_imports.csv"), target="column_26")
    assert auto.warnings == ()  # curb weight is below the price in dollars, not a share of it


def test_near_unique_whole_numbers_telling_nothing_of_the_target_are_an_id() -> None:
    """horse-colic's hospital_number: 284 distinct in 300 rows, spread over millions."""
    frame = _titanic_like().drop(columns="alive")
    rng = np.random.default_rng(3)
    numbers = rng.choice(np.arange(518_000, 5_306_000), 284, replace=False)
    frame["hospital_number"] = rng.permutation(np.concatenate([numbers, numbers[:16]]))
    ds = prepare(frame, target="survived", name="t", source="t")
    assert "hospital_number" not in ds.schema.names
    assert ds.warnings[0].startswith(
        "left out column 'hospital_number': it looks like an ID (284 distinct values in 300 rows)"
    )


def test_a_near_unique_whole_quantity_that_tells_the_target_is_kept() -> None:
    rng = np.random.default_rng(4)
    salary = rng.choice(np.arange(20_000, 200_000), 300, replace=False)
    salary[:20] = salary[20:40]  # 280 distinct: nearly unique, like an ID's
    frame = pd.DataFrame(
        {"salary": salary, "rich": np.where(salary + rng.normal(0, 20_000, 300) > 110_000, 1, 0)}
    )
    ds = prepare(frame, target="rich", name="t", source="t")
    assert ds.schema.names == ["salary"]
    assert ds.warnings == ()


def test_a_date_column_is_never_an_id() -> None:
    frame = _titanic_like().drop(columns="alive")
    frame["booked"] = pd.date_range("2020-01-01", periods=300, freq="h").strftime("%Y-%m-%d %H:%M")
    ds = prepare(frame, target="survived", name="t", source="t")
    assert ds.schema.dates == {"booked": "%Y-%m-%d %H:%M"}
    assert ds.warnings == ()


def test_many_whole_number_classes_put_the_regression_suggestion_first() -> None:
    rng = np.random.default_rng(5)
    rings = np.clip(np.round(rng.normal(10, 3, 4_000)), 1, 29).astype(int)  # abalone's rings
    frame = pd.DataFrame({"shell": rings * 0.03 + rng.normal(0, 0.05, 4_000), "rings": rings})
    ds = prepare(frame, target="rings", name="t", source="t")
    assert ds.schema.task == "classification"
    assert ds.headline is not None
    assert "use --task regression to predict them as a number" in ds.headline
    wine = prepare(frame.assign(rings=rings % 6), target="rings", name="t", source="t")
    assert wine.headline is None  # six grades: classes, nothing to suggest


def test_a_feature_the_target_is_a_rate_of_plus_a_fixed_charge_is_no_share() -> None:
    """A taxi fare of 2.50 plus 2.50 a mile: the distance is below the fare in every row,
    yet its share of the fare grows with it (log-log slope 1.2, far from 1 in errors)."""
    rng = np.random.default_rng(6)
    distance = rng.uniform(0.5, 10, 300).round(2)
    rush = rng.integers(0, 2, 300)
    fare = 2.5 + 2.5 * distance + 8.0 * rush + rng.normal(0, 0.5, 300)
    frame = pd.DataFrame({"distance": distance, "rush": rush, "fare": fare})
    ds = prepare(frame, target="fare", name="t", source="t")
    assert ds.schema.names == ["distance", "rush"]
    assert ds.warnings == ()
