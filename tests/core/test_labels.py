"""Labels: the most probable class, first on ties; whole-number labels stay integers."""

from __future__ import annotations

import numpy as np

from mlcontainer.core.labels import label_array, labels_from_proba


def test_labels_from_proba_takes_the_first_class_on_ties() -> None:
    proba = np.array([[0.5, 0.5], [0.2, 0.8]])
    assert labels_from_proba(proba, ["a", "b"]).tolist() == ["a", "b"]


def test_label_array_keeps_integers_as_integers() -> None:
    assert label_array([1, 2, 3]).dtype == np.int64
    assert label_array(["1", "b"]).dtype == object
    assert label_array([True, False]).dtype == object
