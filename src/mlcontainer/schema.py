"""The model's input contract (features, target, classes): plain data, importable without pandas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FeatureKind = Literal["numeric", "boolean", "categorical"]
Label = str | int

#: Categories are listed in the schema (for forms and docs) only up to this many values.
MAX_LISTED_CATEGORIES = 100


@dataclass(frozen=True)
class Feature:
    """One input column: its name, how it is treated, and the categories seen in training."""

    name: str
    kind: FeatureKind
    categories: tuple[str, ...] | None = None
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in the manifest."""
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "nullable": self.nullable}
        if self.kind == "categorical":
            out["categories"] = list(self.categories) if self.categories is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feature:
        """Rebuild a feature from its manifest form."""
        kind = data["type"]
        if kind not in ("numeric", "boolean", "categorical"):
            raise ValueError(f"unknown feature type {kind!r}")
        cats = data.get("categories")
        return cls(
            name=str(data["name"]),
            kind=kind,
            categories=tuple(str(c) for c in cats) if cats is not None else None,
            nullable=bool(data.get("nullable", False)),
        )


@dataclass(frozen=True)
class Schema:
    """The model's input contract: features in order, the target column and the class labels."""

    features: tuple[Feature, ...]
    target: str
    classes: tuple[Label, ...]

    @property
    def names(self) -> list[str]:
        """Feature names in training order."""
        return [f.name for f in self.features]

    def columns_of(self, *kinds: FeatureKind) -> list[str]:
        """Names of the features of the given kinds, in order."""
        return [f.name for f in self.features if f.kind in kinds]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form stored in the manifest."""
        return {
            "features": [f.to_dict() for f in self.features],
            "target": self.target,
            "classes": list(self.classes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """Rebuild a schema from its manifest form."""
        return cls(
            features=tuple(Feature.from_dict(f) for f in data["features"]),
            target=str(data["target"]),
            classes=tuple(data["classes"]),
        )
