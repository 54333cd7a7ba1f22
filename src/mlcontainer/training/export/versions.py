"""Library versions recorded with a model: what reading its files back depends on."""

from __future__ import annotations

import platform
from collections.abc import Iterable

from mlcontainer import __version__

#: The distributions whose versions the manifest's ``versions`` section records.
VERSIONED = ("scikit-learn", "skops", "numpy", "pandas", "scipy", "joblib")


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Return the installed version of each distribution in ``names`` ("unknown" if absent)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "unknown"
    return out


def library_versions() -> dict[str, str]:
    """Return the versions that matter for reading the model file back."""
    return {
        "python": platform.python_version(),
        "mlcontainer": __version__,
        **package_versions(VERSIONED),
    }
