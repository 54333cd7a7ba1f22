"""Candidate registry: name -> unfitted Pipeline (preprocessing + estimator) for a task.

Each candidate builds a classifier, a regressor, or both (``random_forest`` is a forest of
either kind); ``baseline`` predicts the majority class or the mean, so the leaderboard shows
what doing nothing scores. No I/O, no fitting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.errors import ConfigError
from mlcontainer.core.schema import Task
from mlcontainer.core.suggest import did_you_mean

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from mlcontainer.core.schema import Schema

#: Marker the categorical imputer writes for a missing value: it becomes a category of its own.
MISSING_CATEGORY = "__missing__"
#: One-hot columns per categorical feature at most (the rarest values share the last one), so
#: a name or ticket column cannot blow up the feature count.
MAX_CATEGORIES = 32
#: Values seen in fewer training rows than this join the shared "infrequent" column.
MIN_FREQUENCY = 5
#: Internal folds the calibrated SVM calibrates on (fewer when a class has fewer rows).
CALIBRATION_FOLDS = 3


#: The name of the candidate that predicts without looking at the features.
BASELINE = "baseline"


@dataclass(frozen=True)
class ModelSpec:
    """One candidate: how to build its classifier and regressor, whether inputs are scaled.

    ``build(seed)`` makes the classifier; ``regressor(seed, scale)`` the regressor, where
    ``scale`` is the training target's standard deviation (for hyperparameters in target
    units). Either may be missing: the candidate then serves one task only.
    """

    name: str
    description: str
    scale: bool
    build: Callable[[int], Any] | None
    regressor: Callable[[int, float], Any] | None = None
    regression_description: str = ""

    @property
    def tasks(self) -> tuple[Task, ...]:
        """The tasks this candidate serves."""
        out: list[Task] = []
        if self.build is not None:
            out.append("classification")
        if self.regressor is not None:
            out.append("regression")
        return tuple(out)

    def describe(self, task: Task) -> str:
        """The candidate in words, for ``task``."""
        if task == "regression":
            return self.regression_description or self.description
        return self.description

    def estimator(self, task: Task, seed: int, scale: float) -> Any:
        """An unfitted estimator for ``task``."""
        if task == "regression":
            if self.regressor is None:
                raise ConfigError(f"{self.name} is not a regressor; {_valid_for(task)}")
            return self.regressor(seed, scale)
        if self.build is None:
            raise ConfigError(f"{self.name} is not a classifier; {_valid_for(task)}")
        return self.build(seed)


def _logistic_regression(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, random_state=seed)


def _decision_tree(seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=seed)


def _random_forest(seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def _extra_trees(seed: int) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def _hist_gradient_boosting(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=seed)


def _svm(seed: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    # SVC(probability=True) is deprecated in scikit-learn 1.9; this is its documented replacement.
    return CalibratedClassifierCV(
        SVC(kernel="rbf", random_state=seed), ensemble=False, cv=CALIBRATION_FOLDS
    )


def _k_nearest_neighbors(seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    del seed  # deterministic: nothing to seed
    return KNeighborsClassifier(n_neighbors=5)


def _naive_bayes(seed: int) -> Any:
    from sklearn.naive_bayes import GaussianNB

    del seed
    return GaussianNB()


def _ridge(seed: int, scale: float) -> Any:
    from sklearn.linear_model import Ridge

    del seed, scale  # closed-form: nothing to seed; the target's scale needs no setting
    return Ridge(alpha=1.0)


def _decision_tree_regressor(seed: int, scale: float) -> Any:
    from sklearn.tree import DecisionTreeRegressor

    del scale
    return DecisionTreeRegressor(random_state=seed)


def _random_forest_regressor(seed: int, scale: float) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    del scale
    return RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1)


def _extra_trees_regressor(seed: int, scale: float) -> Any:
    from sklearn.ensemble import ExtraTreesRegressor

    del scale
    return ExtraTreesRegressor(n_estimators=100, random_state=seed, n_jobs=1)


def _hist_gradient_boosting_regressor(seed: int, scale: float) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    del scale
    return HistGradientBoostingRegressor(random_state=seed)


def _svr(seed: int, scale: float) -> Any:
    from sklearn.svm import SVR

    del seed  # deterministic
    # C and epsilon are in the target's units: SVR's defaults (1 and 0.1) suit a target of
    # unit spread and underfit a price in dollars. Relative to the spread they fit both.
    spread = scale if scale > 0 else 1.0
    return SVR(kernel="rbf", C=3.0 * spread, epsilon=0.1 * spread)


def _k_nearest_neighbors_regressor(seed: int, scale: float) -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    del seed, scale
    return KNeighborsRegressor(n_neighbors=5)


def _majority(seed: int) -> Any:
    from sklearn.dummy import DummyClassifier

    return DummyClassifier(strategy="prior", random_state=seed)


def _mean(seed: int, scale: float) -> Any:
    from sklearn.dummy import DummyRegressor

    del seed, scale
    return DummyRegressor(strategy="mean")


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "logistic_regression", "Logistic regression (L2, lbfgs)", True, _logistic_regression
        ),
        ModelSpec(
            "decision_tree",
            "Decision tree (CART, unpruned)",
            False,
            _decision_tree,
            _decision_tree_regressor,
        ),
        ModelSpec(
            "random_forest",
            "Random forest, 100 trees",
            False,
            _random_forest,
            _random_forest_regressor,
        ),
        ModelSpec(
            "extra_trees",
            "Extremely randomized trees, 100 trees",
            False,
            _extra_trees,
            _extra_trees_regressor,
        ),
        ModelSpec(
            "hist_gradient_boosting",
            "Histogram gradient boosting",
            False,
            _hist_gradient_boosting,
            _hist_gradient_boosting_regressor,
        ),
        ModelSpec(
            "svm",
            "Support vector machine, RBF kernel, Platt-calibrated",
            True,
            _svm,
            _svr,
            "Support vector regression, RBF kernel, C and epsilon scaled to the target",
        ),
        ModelSpec(
            "k_nearest_neighbors",
            "k-nearest neighbours, k=5",
            True,
            _k_nearest_neighbors,
            _k_nearest_neighbors_regressor,
        ),
        ModelSpec("naive_bayes", "Gaussian naive Bayes", False, _naive_bayes),
        ModelSpec("ridge", "Ridge regression (L2-regularised linear, alpha=1)", True, None, _ridge),
        ModelSpec(
            BASELINE,
            "Baseline: the training split's class frequencies, whatever the features",
            False,
            _majority,
            _mean,
            "Baseline: the training split's mean, whatever the features",
        ),
    )
}


def models_for(task: Task, chosen: tuple[str, ...] | None = None) -> list[str]:
    """The candidates compared for ``task``: those chosen (all serving it, if none), then
    the baseline; a chosen one that does not serve the task is refused."""
    if chosen is None:
        names = [n for n, s in MODELS.items() if task in s.tasks and n != BASELINE]
    else:
        wrong = [n for n in chosen if task not in MODELS[n].tasks]
        if wrong:
            raise ConfigError(
                f"--models names {', '.join(map(repr, wrong))}, which "
                f"{'is' if len(wrong) == 1 else 'are'} not for {task}; {_valid_for(task)}"
            )
        names = [n for n in chosen if n != BASELINE]
    return [*names, BASELINE]


def _valid_for(task: Task) -> str:
    names = [n for n, s in MODELS.items() if task in s.tasks]
    return f"valid for {task}: {', '.join(names)}"


def parse_model_names(text: str | None) -> list[str]:
    """Turn ``"a,b"`` (or ``None`` for all) into registry names, refusing unknown ones."""
    if text is None or not text.strip():
        return list(MODELS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    check_model_names(names)
    return list(dict.fromkeys(names))


def check_model_names(names: Sequence[str]) -> None:
    """Refuse no names, or a name the registry does not have (naming the closest one)."""
    if not names:
        raise ConfigError(f"--models names no model; valid: {', '.join(MODELS)}")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        shown = ", ".join(repr(n) + did_you_mean(n, MODELS) for n in unknown)
        raise ConfigError(f"unknown model {shown}; valid: {', '.join(MODELS)}")


def build_pipeline(
    name: str, schema: Schema, *, random_state: int, target_scale: float = 1.0
) -> Pipeline:
    """Return an unfitted Pipeline: preprocessing for ``schema`` followed by model ``name``
    for the schema's task (``target_scale``: the training target's spread, for a regressor)."""
    from sklearn.pipeline import Pipeline

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    spec = MODELS[name]
    return Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale=spec.scale)),
            ("model", spec.estimator(schema.task, random_state, target_scale)),
        ]
    )


class CandidateUnfitError(ValueError):
    """A candidate that cannot be fitted on these rows, in mlcontainer's words."""


def fit_ready(pipeline: Any, y: Any) -> Any:
    """Fit ``pipeline``'s inner cross-validation to the rows it gets, or refuse in one line.

    The calibrated SVM calibrates on 3 internal folds; a class with fewer rows than that in
    these rows gets fewer folds (2 at least), or the candidate is refused for them.
    """
    from sklearn.calibration import CalibratedClassifierCV

    model = pipeline.named_steps["model"]
    if isinstance(model, CalibratedClassifierCV) and isinstance(model.cv, int):
        labels, counts = np.unique(np.asarray(y), return_counts=True)
        smallest = int(counts.min())
        if smallest < 2:
            rare = labels[int(counts.argmin())]
            raise CandidateUnfitError(
                f"calibrating the SVM's probabilities needs 2 rows of every class, and class "
                f"{rare.item() if hasattr(rare, 'item') else rare!r} has {smallest} here"
            )
        model.set_params(cv=min(CALIBRATION_FOLDS, smallest))
    return pipeline


def build_preprocessor(schema: Schema, *, scale: bool) -> Any:
    """Impute (and scale) numeric columns; impute and one-hot encode categorical ones, bounded;
    turn date columns into calendar features (imputed and scaled as numbers are)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from mlcontainer.core.dates import DateFeatures

    numeric = schema.columns_of("numeric", "boolean")
    dates = schema.dates
    categorical = [c for c in schema.columns_of("categorical") if c not in dates]
    transformers: list[tuple[str, Any, list[str]]] = []

    def numbers(*first: tuple[str, Any]) -> Any:
        steps = [*first, ("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
        if scale:
            steps.append(("scale", StandardScaler()))
        return Pipeline(steps)

    if numeric:
        transformers.append(("numeric", numbers(), numeric))
    if dates:
        calendar = ("calendar", DateFeatures(formats=tuple(dates.values())))
        transformers.append(("dates", numbers(calendar), list(dates)))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(
                                strategy="constant",
                                fill_value=MISSING_CATEGORY,
                                keep_empty_features=True,
                            ),
                        ),
                        (
                            "onehot",
                            OneHotEncoder(
                                handle_unknown="infrequent_if_exist",
                                max_categories=MAX_CATEGORIES,
                                min_frequency=MIN_FREQUENCY,
                                sparse_output=False,
                            ),
                        ),
                    ]
                ),
                categorical,
            )
        )
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
