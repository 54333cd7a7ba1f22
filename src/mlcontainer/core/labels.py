"""Class labels as NumPy arrays, of the type scikit-learn's metrics accept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlcontainer.core.schema import Label


def label_array(values: Sequence[Label] | np.ndarray | Any) -> np.ndarray:
    """Return labels as scikit-learn wants them: int64 if all are whole numbers, else objects.

    An object array of Python ints has the target type "unknown", which no metric accepts.
    ``values`` may be a sequence, an array or a pandas Series.
    """
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    if items and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
        return np.asarray(items, dtype=np.int64)
    return np.asarray(items, dtype=object)
