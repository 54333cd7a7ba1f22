"""Candidate registry: name -> unfitted Pipeline with its preprocessing. No I/O, no fitting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.errors import ConfigError

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


@dataclass(frozen=True)
class ModelSpec:
    """One candidate: how to build its estimator and whether its inputs must be scaled."""

    name: str
    description: str
    scale: bool
    build: Callable[[int], Any]


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


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "logistic_regression", "Logistic regression (L2, lbfgs)", True, _logistic_regression
        ),
        ModelSpec("decision_tree", "Decision tree (CART, unpruned)", False, _decision_tree),
        ModelSpec("random_forest", "Random forest, 100 trees", False, _random_forest),
        ModelSpec("extra_trees", "Extremely randomized trees, 100 trees", False, _extra_trees),
        ModelSpec(
            "hist_gradient_boosting", "Histogram gradient boosting", False, _hist_gradient_boosting
        ),
        ModelSpec("svm", "Support vector machine, RBF kernel, Platt-calibrated", True, _svm),
        ModelSpec("k_nearest_neighbors", "k-nearest neighbours, k=5", True, _k_nearest_neighbors),
        ModelSpec("naive_bayes", "Gaussian naive Bayes", False, _naive_bayes),
    )
}


def parse_model_names(text: str | None) -> list[str]:
    """Turn ``"a,b"`` (or ``None`` for all) into registry names, refusing unknown ones."""
    if text is None or not text.strip():
        return list(MODELS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--models names no model; valid: {', '.join(MODELS)}")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ConfigError(
            f"unknown model {', '.join(map(repr, unknown))}; valid: {', '.join(MODELS)}"
        )
    return list(dict.fromkeys(names))


def build_pipeline(name: str, schema: Schema, *, random_state: int) -> Pipeline:
    """Return an unfitted Pipeline: preprocessing for ``schema`` followed by model ``name``."""
    from sklearn.pipeline import Pipeline

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    spec = MODELS[name]
    return Pipeline(
        [
            ("preprocess", build_preprocessor(schema, scale=spec.scale)),
            ("model", spec.build(random_state)),
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
    """Impute (and scale) numeric columns; impute and one-hot encode categorical ones, bounded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = schema.columns_of("numeric", "boolean")
    categorical = schema.columns_of("categorical")
    transformers: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if scale:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), numeric))
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
