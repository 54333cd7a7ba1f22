"""The model's contract (task, features, target, classes): plain data, importable without pandas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FeatureKind = Literal["numeric", "boolean", "categorical"]
Label = str | int
#: What the model predicts: a class (with probabilities) or a number.
Task = Literal["classification", "regression"]
TASKS: tuple[Task, ...] = ("classification", "regression")

#: Categories are listed in the schema (for forms and docs) only up to this many values.
MAX_LISTED_CATEGORIES = 100


@dataclass(frozen=True)
class Feature:
    """One input column: its name, how it is treated, and the categories seen in training."""

    name: str
    kind: FeatureKind
    categories: tuple[str, ...] | None = None
    nullable: bool = False
    #: A text column of dates in this format (``core.dates``), made calendar features.
    date_format: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in the manifest."""
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "nullable": self.nullable}
        if self.kind == "categorical":
            out["categories"] = list(self.categories) if self.categories is not None else None
        if self.date_format is not None:
            out["date_format"] = self.date_format
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feature:
        """Rebuild a feature from its manifest form; ``ValueError`` names what is wrong."""
        name, kind, cats = data.get("name"), data.get("type"), data.get("categories")
        if not isinstance(name, str):
            raise ValueError(f"a feature's name must be text, got {name!r}")
        if kind not in ("numeric", "boolean", "categorical"):
            raise ValueError(f"feature {name!r} has an unknown type {kind!r}")
        if cats is not None and not (
            isinstance(cats, list) and all(isinstance(c, str) for c in cats)
        ):
            raise ValueError(f"feature {name!r}: categories must be a list of text or null")
        date_format = data.get("date_format")
        if date_format is not None and (kind != "categorical" or not isinstance(date_format, str)):
            raise ValueError(f"feature {name!r}: a date format is text, on a categorical column")
        return cls(
            name=name,
            kind=kind,
            categories=tuple(cats) if cats is not None else None,
            nullable=bool(data.get("nullable", False)),
            date_format=date_format,
        )


@dataclass(frozen=True)
class Schema:
    """The model's contract: features in order, the target column, the task and, for a
    classifier, the class labels (a regressor has none)."""

    features: tuple[Feature, ...]
    target: str
    classes: tuple[Label, ...]
    task: Task = "classification"

    @property
    def is_regression(self) -> bool:
        """Whether the model predicts a number rather than a class."""
        return self.task == "regression"

    @property
    def names(self) -> list[str]:
        """Feature names in training order."""
        return [f.name for f in self.features]

    def columns_of(self, *kinds: FeatureKind) -> list[str]:
        """Names of the features of the given kinds, in order."""
        return [f.name for f in self.features if f.kind in kinds]

    @property
    def dates(self) -> dict[str, str]:
        """Date columns (text made calendar features) and their formats, in order."""
        return {f.name: f.date_format for f in self.features if f.date_format is not None}

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in the manifest."""
        return {
            "task": self.task,
            "features": [f.to_dict() for f in self.features],
            "target": self.target,
            "classes": list(self.classes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Rebuild a schema from its manifest form; ``ValueError`` names what is wrong."""
        features, target, classes = data.get("features"), data.get("target"), data.get("classes")
        if not isinstance(features, list) or not all(isinstance(f, Mapping) for f in features):
            raise ValueError("the schema's features must be a list of objects")
        if not features:
            raise ValueError("the schema lists no features; a model reads at least one")
        if not isinstance(target, str):
            raise ValueError(f"the schema's target must be text, got {target!r}")
        if not isinstance(classes, list) or not all(
            isinstance(c, str) or (isinstance(c, int) and not isinstance(c, bool)) for c in classes
        ):
            raise ValueError("the schema's classes must be a list of text or whole numbers")
        task = data.get("task", "classification")  # version 1 folders hold classifiers only
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
        if (task == "regression") != (not classes):
            raise ValueError(f"a {task} model must list {'no' if classes else 'its'} classes")
        return cls(
            features=tuple(Feature.from_dict(f) for f in features),
            target=target,
            classes=tuple(classes),
            task=task,
        )
