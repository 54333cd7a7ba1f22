"""Splitting, cross-validated comparison and selection: deterministic and honest about failure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import options

from mlcontainer.core.errors import ConfigError, TrainingError
from mlcontainer.training.data.dataset import Dataset, load_dataset, prepare
from mlcontainer.training.search import models as registry
from mlcontainer.training.search.compare import compare
from mlcontainer.training.search.refit import train
from mlcontainer.training.search.split import split_dataset


def _dataset(frame: pd.DataFrame, target: str = "y", keep: tuple[str, ...] = ()) -> Dataset:
    return prepare(frame, target=target, name="t", source="test", keep=keep)


def _separable(rows_per_class: int = 12) -> Dataset:
    """Two classes a single threshold separates: every sensible model scores 1.0."""
    x = np.r_[np.arange(rows_per_class), np.arange(rows_per_class) + 100.0]
    y = ["low"] * rows_per_class + ["high"] * rows_per_class
    # x alone gives the class away, so training would leave it out as a leak: kept on purpose.
    return _dataset(pd.DataFrame({"x": x, "noise": np.zeros_like(x), "y": y}), keep=("x",))


def test_split_is_stratified_and_disjoint() -> None:
    ds = load_dataset("wine")
    split = split_dataset(ds, test_size=0.25, cv=5, random_state=0)
    assert len(split.X_test) == 45
    assert set(split.X_train.index).isdisjoint(split.X_test.index)
    train_share = split.y_train.value_counts(normalize=True).sort_index()
    test_share = split.y_test.value_counts(normalize=True).sort_index()
    assert np.allclose(train_share, test_share, atol=0.03)


def test_split_is_the_same_for_the_same_seed() -> None:
    ds = load_dataset("iris")
    one = split_dataset(ds, test_size=0.2, cv=3, random_state=5)
    two = split_dataset(ds, test_size=0.2, cv=3, random_state=5)
    other = split_dataset(ds, test_size=0.2, cv=3, random_state=6)
    assert list(one.X_test.index) == list(two.X_test.index)
    assert list(one.X_test.index) != list(other.X_test.index)


def test_split_refuses_a_class_with_one_row() -> None:
    frame = pd.DataFrame({"x": range(11), "y": ["a"] * 10 + ["rare"]})
    with pytest.raises(
        TrainingError, match=r"stratified test split: class\(es\) 'rare' \(1 rows\)"
    ):
        split_dataset(_dataset(frame), test_size=0.2, cv=2, random_state=0)


def test_split_refuses_a_class_too_small_for_the_folds() -> None:
    rng = np.random.default_rng(0)  # numbers that neither name the rows nor give the class away
    frame = pd.DataFrame({"x": rng.normal(size=24), "y": ["a"] * 20 + ["b"] * 4})
    with pytest.raises(TrainingError, match=r"too few rows for 5-fold.*'b' \(3 rows\)"):
        split_dataset(_dataset(frame), test_size=0.2, cv=5, random_state=0)


def test_split_refuses_a_test_size_smaller_than_the_classes() -> None:
    with pytest.raises(TrainingError, match="each side of the split needs a row of every class"):
        split_dataset(load_dataset("iris"), test_size=0.01, cv=2, random_state=0)


@pytest.mark.parametrize(("test_size", "cv"), [(0.0, 5), (1.0, 5), (-0.1, 5), (0.2, 1)])
def test_split_options_are_refused_before_any_work(test_size: float, cv: int) -> None:
    with pytest.raises(ConfigError):
        options(test_size=test_size, cv=cv)


def test_ties_are_broken_by_registry_order() -> None:
    ds = _separable()
    split = split_dataset(ds, test_size=0.25, cv=3, random_state=0)
    chosen = ["naive_bayes", "decision_tree", "logistic_regression"]
    board = compare(
        split, ds.schema, options(models=chosen, metric="accuracy", cv=3, random_state=0)
    )
    assert [c.means["accuracy"] for c in board] == [1.0, 1.0, 1.0, 0.5]
    assert [c.name for c in board] == [*(n for n in registry.MODELS if n in chosen), "baseline"]


def test_compare_ranks_by_metric_direction() -> None:
    ds = load_dataset("iris")
    split = split_dataset(ds, test_size=0.2, cv=3, random_state=0)
    chosen = ["naive_bayes", "k_nearest_neighbors", "logistic_regression"]
    for metric, sign in (("log_loss", 1), ("balanced_accuracy", -1)):
        board = compare(
            split, ds.schema, options(models=chosen, metric=metric, cv=3, random_state=0)
        )
        keys = [sign * c.means[metric] for c in board]
        assert keys == sorted(keys)


def test_a_failing_candidate_is_reported_and_the_others_still_rank(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(seed: int) -> object:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=-1.0, random_state=seed)  # fit raises a ValueError

    monkeypatch.setitem(registry.MODELS, "svm", registry.ModelSpec("svm", "fails", True, broken))
    ds = load_dataset("iris")
    result = train(
        ds,
        options(
            models=["svm", "naive_bayes"], metric="f1_macro", cv=2, test_size=0.2, random_state=0
        ),
    )
    assert result.selected == "naive_bayes"
    assert [c.name for c in result.leaderboard] == ["naive_bayes", "baseline", "svm"]
    assert "C" in (result.leaderboard[2].error or "")
    assert result.warnings == ()


def _broken(seed: int) -> object:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=-1.0, random_state=seed)  # fit raises a ValueError


def test_the_baseline_is_selected_only_when_every_model_failed_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.MODELS, "svm", registry.ModelSpec("svm", "fails", True, _broken))
    result = train(
        load_dataset("iris"),
        options(models=["svm"], metric="f1_macro", cv=2, test_size=0.2, random_state=0),
    )
    assert result.selected == "baseline"
    assert [c.name for c in result.leaderboard] == ["baseline", "svm"]
    assert result.warnings == (
        "every candidate model failed or was skipped, so the baseline was selected: it ignores "
        "the features (see the leaderboard for each candidate's reason)",
    )
    # the prior: every row gets the training split's class frequencies
    proba = result.pipeline.predict_proba(result.split.X_test)
    assert np.allclose(proba, proba[0])


def test_every_candidate_and_the_baseline_failing_is_a_training_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.MODELS, "svm", registry.ModelSpec("svm", "fails", True, _broken))
    monkeypatch.setitem(
        registry.MODELS, "baseline", registry.ModelSpec("baseline", "fails", False, _broken)
    )
    with pytest.raises(TrainingError, match=r"every candidate model failed to train: svm: .*C"):
        train(
            load_dataset("iris"),
            options(models=["svm"], metric="f1_macro", cv=2, test_size=0.2, random_state=0),
        )


def test_a_model_worse_than_the_baseline_is_still_selected_with_a_warning() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})  # pure noise
    result = train(
        _dataset(frame), options(models=["decision_tree"], cv=3, test_size=0.2, random_state=0)
    )
    assert result.metric == "rmse"
    # The ensemble of the tree's presets averages away some noise, not enough to help.
    names = [c.name for c in result.leaderboard]
    assert names[0] == "baseline"
    assert sorted(names[1:]) == ["decision_tree", "ensemble"]
    assert result.selected == names[1]
    (warning,) = result.warnings
    assert warning.startswith(
        f"the selected {names[1]} scored worse than the baseline, which ignores the features, "
        "in cross-validation (RMSE "
    )
    assert warning.endswith("the features may not predict the target")


def test_regression_uses_shuffled_kfold_and_reports_its_metrics() -> None:
    ds = load_dataset("diabetes")
    split = split_dataset(ds, test_size=0.2, cv=3, random_state=0)
    assert len(split.X_test) == 89  # ceil(0.2 x 442)
    board = compare(split, ds.schema, options(models=["ridge"], cv=3, random_state=0))
    # Ridge's presets make an ensemble too; it does not beat ridge here.
    assert [c.name for c in board] == ["ridge", "ensemble", "baseline"]
    ridge, _, baseline = board
    assert set(ridge.means) == {"rmse", "mae", "r2", "median_ae", "mape"}
    assert ridge.means["rmse"] < baseline.means["rmse"]
    assert 0.3 < ridge.means["r2"] < 0.7
    assert abs(baseline.means["r2"]) < 0.05  # the mean of each training fold: R² about 0
    again = compare(split, ds.schema, options(models=["ridge"], cv=3, random_state=0))
    assert [c.means for c in again] == [c.means for c in board]


def test_compare_refuses_unknown_models_and_metrics() -> None:
    ds = load_dataset("iris")
    split = split_dataset(ds, test_size=0.2, cv=2, random_state=0)
    with pytest.raises(ConfigError, match="forest"):
        compare(
            split, ds.schema, options(models=["forest"], metric="accuracy", cv=2, random_state=0)
        )
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        compare(split, ds.schema, options(models=["svm"], metric="auc", cv=2, random_state=0))


def test_selected_pipeline_is_fitted_on_the_training_split_only() -> None:
    ds = load_dataset("wine")
    result = train(
        ds,
        options(models=["decision_tree"], metric="accuracy", cv=3, test_size=0.3, random_state=1),
    )
    tree = result.pipeline.named_steps["model"]
    assert tree.tree_.n_node_samples[0] == len(result.split.X_train)


def test_parallel_comparison_gives_the_serial_leaderboard() -> None:
    ds = load_dataset("wine")
    split = split_dataset(ds, test_size=0.2, cv=3, random_state=0)
    chosen = ["random_forest", "hist_gradient_boosting", "logistic_regression", "naive_bayes"]
    boards = [
        compare(
            split,
            ds.schema,
            options(models=chosen, metric="f1_macro", cv=3, random_state=0, jobs=j),
        )
        for j in (1, 2, -1)
    ]
    for board in boards[1:]:
        assert [(c.name, c.means, c.stds) for c in board] == [
            (c.name, c.means, c.stds) for c in boards[0]
        ]


def test_parallel_comparison_restores_the_native_thread_limits() -> None:
    from threadpoolctl import threadpool_info

    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
    ds = load_dataset("iris")
    split = split_dataset(ds, test_size=0.2, cv=2, random_state=0)
    compare(
        split,
        ds.schema,
        options(models=["naive_bayes"], metric="accuracy", cv=2, random_state=0, jobs=2),
    )
    assert [(i["filepath"], i["num_threads"]) for i in threadpool_info()] == before
