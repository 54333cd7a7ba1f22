"""Labels: whole-number labels stay integers."""

from __future__ import annotations

import numpy as np

from mlcontainer.core.labels import label_array


def test_label_array_keeps_integers_as_integers() -> None:
    assert label_array([1, 2, 3]).dtype == np.int64
    assert label_array(["1", "b"]).dtype == object
    assert label_array([True, False]).dtype == object
