"""Model files whose bytes depend only on the fitted pipeline, and that load as it."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import skops.io

from mlcontainer.training.data.dataset import load_dataset
from mlcontainer.training.export.skopsfile import EPOCH, canonical, dumps
from mlcontainer.training.search.models import build_pipeline
from mlcontainer.training.search.split import target_array


def _fit(model: str) -> tuple[object, object]:
    ds = load_dataset("penguins")
    pipe = build_pipeline(model, ds.schema, random_state=0, target_scale=1.0)
    pipe.fit(ds.X, target_array(ds.y, ds.schema))
    return pipe, ds.X


def test_two_identical_fits_give_the_same_bytes_though_skops_alone_does_not() -> None:
    a, _ = _fit("random_forest")
    b, _ = _fit("random_forest")
    assert skops.io.dumps(a) != skops.io.dumps(b)  # ids of this process, times of now
    assert dumps(a) == dumps(b)


def test_the_canonical_file_loads_as_the_same_pipeline() -> None:
    pipe, X = _fit("hist_gradient_boosting")
    data = dumps(pipe)
    loaded = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))  # type: ignore[attr-defined]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert all(i.date_time == EPOCH for i in z.infolist())
        assert sorted(z.namelist()) == sorted(
            [*(f"{k}.npy" for k in range(len(z.namelist()) - 1)), "schema.json"]
        )


def test_canonical_is_idempotent() -> None:
    pipe, _ = _fit("logistic_regression")
    once = dumps(pipe)
    assert canonical(once) == once
