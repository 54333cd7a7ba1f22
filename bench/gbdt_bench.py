"""LightGBM and CatBoost against the registry's HistGradientBoosting: test score, fit time,
single-row ONNX latency and install size, on shared datasets, in a venv of their own.

Not a project dependency: run with a separate interpreter, e.g.
    uv venv -p 3.11 ../benchvenvs/i23b-gbdt
    uv pip install --python ../benchvenvs/i23b-gbdt/bin/python lightgbm catboost \
        scikit-learn==1.9.1 pandas onnxmltools onnxruntime skl2onnx
    flock ../bench.lock ../benchvenvs/i23b-gbdt/bin/python bench/gbdt_bench.py
Each model gets its library's defaults; the same stratified 80/20 split (seed 42); numeric
columns as they are, text columns one-hot (at most 32 levels, as the project does) for
HistGradientBoosting and LightGBM, CatBoost's own categorical handling for CatBoost.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATASETS = {  # file, target, metric
    "adult": ("adult.csv", "income", "roc_auc"),
    "winequality-red": ("winequality-red.csv", "11", "f1_macro"),  # headerless: the last column
}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def load(name: str) -> tuple[pd.DataFrame, pd.Series]:
    file, target, _ = DATASETS[name]
    header = None if target.isdigit() else "infer"
    frame = pd.read_csv(SHARED / file, header=header, skipinitialspace=True, na_values=["?"])
    frame.columns = [str(c).strip() for c in frame.columns]
    y = frame.pop(target).astype(str).str.strip()
    return frame, y


def score(metric: str, y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    from sklearn.metrics import f1_score, roc_auc_score

    if metric == "roc_auc":
        return float(roc_auc_score(y == classes[1], proba[:, 1]))
    return float(f1_score(y, classes[np.argmax(proba, axis=1)], average="macro"))


def onehot(X: pd.DataFrame):  # type: ignore[no-untyped-def]
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    text = [c for c in X.columns if X[c].dtype == object]
    numeric = [c for c in X.columns if c not in text]
    return ColumnTransformer(
        [
            ("n", SimpleImputer(strategy="median"), numeric),
            (
                "c",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="__missing__"),
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist", max_categories=32, sparse_output=False
                    ),
                ),
                text,
            ),
        ]
    )


def onnx_p50(model_bytes: bytes, row: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    times = []
    for _ in range(2000):
        t = time.perf_counter()
        session.run(None, {name: row})
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    from catboost import CatBoostClassifier
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    out: dict[str, object] = {"loadavg": Path("/proc/loadavg").read_text().split()[:3]}
    for name, (_, _, metric) in DATASETS.items():
        X, y = load(name)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
        classes = np.array(sorted(y.unique()))
        pre = onehot(X).fit(Xtr)
        A, B = pre.transform(Xtr).astype(np.float32), pre.transform(Xte).astype(np.float32)
        rows: dict[str, dict[str, float | str]] = {}
        models = {
            "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=42),
            "lightgbm": LGBMClassifier(random_state=42, verbose=-1, n_jobs=1),
        }
        for label, model in models.items():
            t = time.perf_counter()
            model.fit(A, ytr)
            fit = time.perf_counter() - t
            rows[label] = {
                "score": score(metric, yte.to_numpy(), model.predict_proba(B), classes),
                "fit s": fit,
            }
            try:
                if label == "lightgbm":
                    from onnxmltools import convert_lightgbm
                    from onnxmltools.convert.common.data_types import FloatTensorType

                    onx = convert_lightgbm(
                        model,
                        initial_types=[("x", FloatTensorType([None, A.shape[1]]))],
                        zipmap=False,
                        target_opset=17,
                    )
                else:
                    from skl2onnx import to_onnx

                    onx = to_onnx(
                        model,
                        A[:1],
                        options={"zipmap": False},
                        target_opset={"": 17, "ai.onnx.ml": 3},
                    )
                rows[label]["onnx 1-row p50 ms"] = onnx_p50(onx.SerializeToString(), B[:1])
            except Exception as exc:  # noqa: BLE001 - a figure, not a verdict
                rows[label]["onnx"] = f"failed: {str(exc).splitlines()[0][:120]}"
        text = [c for c in X.columns if X[c].dtype == object]
        ctr, cte = Xtr.copy(), Xte.copy()
        for c in text:
            ctr[c] = ctr[c].fillna("__missing__")
            cte[c] = cte[c].fillna("__missing__")
        cat = CatBoostClassifier(random_seed=42, verbose=0, thread_count=1, cat_features=text)
        t = time.perf_counter()
        cat.fit(ctr, ytr)
        fit = time.perf_counter() - t
        rows["catboost"] = {
            "score": score(metric, yte.to_numpy(), cat.predict_proba(cte), classes),
            "fit s": fit,
        }
        if not text:
            path = Path("/tmp/i23b-catboost.onnx")
            cat.save_model(str(path), format="onnx")
            rows["catboost"]["onnx 1-row p50 ms"] = onnx_p50(
                path.read_bytes(), cte.to_numpy(np.float32)[:1]
            )
        else:
            rows["catboost"]["onnx"] = (
                "not measured: CatBoost's ONNX export refuses categorical features"
            )
        out[name] = {"metric": metric, **rows}
        print(name, json.dumps(rows), file=sys.stderr)
    out["loadavg after"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
