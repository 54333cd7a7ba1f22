"""Which models get a verified ONNX graph: every candidate on the shared datasets and on
generated files with large-valued features, fitted on 1 000 rows and on up to 5 000.

    uv run python bench/onnx_bench.py                       # the table, one line per dataset
    uv run python bench/onnx_bench.py --extra diamonds.csv:price --extra diamonds.csv:cut
    /path/to/other/.venv/bin/python bench/onnx_bench.py     # the same with another checkout

Each candidate is fitted with its registry defaults on a seeded subsample of the training
split (the time budget fits on 1 000 rows under load, which is where the float32 graphs of
gradient boosting failed) and exported with the project's own `export_onnx`, verified on the
whole test split as `train` does. No timing: the figures are counts, so the load does not
change them. ``--record FILE`` appends the rows as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
#: (file in ../shared/datasets, target, task)
SHARED_TASKS = (
    ("titanic.csv", "survived", "auto"),
    ("adult.csv", "income", "auto"),
    ("pima-indians-diabetes.csv", "column_9", "auto"),
    ("auto_imports.csv", "column_26", "auto"),
    ("winequality-red.csv", "column_12", "classification"),
    ("winequality-red.csv", "column_12", "regression"),
    ("sonar.csv", "column_61", "auto"),
)
SIZES = (1000, 5000)


def stones(rows: int, *, seed: int) -> str:
    """A diamonds-like table: sizes to 2 decimals, prices in whole dollars to ~19 000."""
    rng = np.random.default_rng(seed)
    carat = np.clip(rng.lognormal(-0.4, 0.55, rows), 0.2, 5.0).round(2)
    cuts = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
    cut = rng.choice(cuts, rows, p=np.array([3, 9, 22, 26, 40]) / 100)
    depth = rng.normal(61.7, 1.4, rows).round(1)
    table = rng.normal(57.4, 2.2, rows).round(0)
    x = (6.45 * carat ** (1 / 3) + rng.normal(0, 0.05, rows)).round(2)
    y = (x + rng.normal(0, 0.05, rows)).round(2)
    z = (0.618 * x + rng.normal(0, 0.03, rows)).round(2)
    bonus = np.array([cuts.index(c) for c in cut]) * 0.04
    price = np.clip(3900 * carat**1.7 * (1 + bonus) * rng.lognormal(0, 0.12, rows), 326, 18823)
    lines = ["carat,cut,depth,table,price,x,y,z"]
    lines += [
        f"{c},{k},{d},{t:.0f},{p:.0f},{a},{b},{e}"
        for c, k, d, t, p, a, b, e in zip(carat, cut, depth, table, price, x, y, z, strict=True)
    ]
    return "\n".join(lines) + "\n"


def accounts(rows: int, *, seed: int) -> str:
    """Balances and incomes in cents up to millions (float32 holds ~7 digits), a category."""
    rng = np.random.default_rng(seed)
    balance = rng.lognormal(12.0, 1.4, rows).round(2)
    income = rng.lognormal(10.8, 0.6, rows).round(2)
    age = rng.integers(18, 90, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    score = np.log(balance) - 1.1 * np.log(income) + 0.01 * age + rng.normal(0, 0.5, rows)
    late = np.where(score > np.median(score), "yes", "no")
    lines = ["balance,income,age,region,late"]
    lines += [
        f"{b:.2f},{i:.2f},{a},{r},{t}"
        for b, i, a, r, t in zip(balance, income, age, region, late, strict=True)
    ]
    return "\n".join(lines) + "\n"


def probe(path: Path, target: str, task: str, *, group: str) -> list[dict[str, Any]]:
    """Fit every candidate for the file's task on each subsample size and export it."""
    from mlcontainer.core.labels import label_array
    from mlcontainer.core.threads import one_native_thread
    from mlcontainer.training.data.dataset import load_dataset
    from mlcontainer.training.export.onnx_export import export_onnx
    from mlcontainer.training.search.models import (
        BASELINE,
        build_pipeline,
        fit_ready,
        models_for,
    )
    from mlcontainer.training.search.split import split_dataset

    ds = load_dataset(str(path), target=target, task=task)
    split = split_dataset(ds, test_size=0.2, cv=5, random_state=42)
    regression = ds.schema.is_regression
    y_all = split.y_train.to_numpy(dtype=float) if regression else label_array(split.y_train)
    spread = float(np.std(y_all)) if regression else 1.0
    out = []
    for take in sorted({min(rows, len(y_all)) for rows in SIZES}):
        index = np.random.default_rng(0).permutation(len(y_all))[:take]
        X, y = split.X_train.iloc[index], y_all[index]
        for name in models_for(ds.schema.task):
            if name == BASELINE:
                continue
            pipeline = build_pipeline(name, ds.schema, random_state=0, target_scale=spread)
            started = time.perf_counter()
            try:
                with one_native_thread():
                    fit_ready(pipeline, y).fit(X, y)
            except ValueError as exc:  # a candidate these rows cannot fit (too few per class)
                reason, onnx = f"not fitted: {exc}", None
            else:
                exported = export_onnx(pipeline, ds.schema, split.X_test, target_scale=spread)
                reason, onnx = exported.reason, exported.model_bytes is not None
            out.append(
                {
                    "group": group,
                    "dataset": f"{path.name}:{target}",
                    "task": ds.schema.task,
                    "model": name,
                    "fit_rows": take,
                    "onnx": onnx,
                    "reason": reason,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", default=[], help="FILE:TARGET[:TASK]")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of each generated file")
    parser.add_argument("--record", type=Path, help="append the rows as JSON lines here")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared datasets")
    parser.add_argument("--report", type=Path, help="print the table of a --record file")
    args = parser.parse_args()
    if args.report:
        report([json.loads(line) for line in args.report.read_text().splitlines()])
        return
    rows: list[dict[str, Any]] = []
    if args.no_shared:
        pass
    elif SHARED.is_dir():
        for name, target, task in SHARED_TASKS:
            rows += probe(SHARED / name, target, task, group="shared")
    else:
        print(f"{SHARED} is absent: shared datasets skipped", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        for make, target in ((stones, "price"), (stones, "cut"), (accounts, "late")):
            path = Path(folder) / f"{make.__name__}.csv"
            path.write_text(make(args.rows, seed=7))
            rows += probe(path, target, "auto", group="generated")
    for spec in args.extra:
        file, target, *task = spec.split(":")
        rows += probe(Path(file), target, task[0] if task else "auto", group="extra")
    if args.record:
        with args.record.open("a") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    """One line per dataset and fit size: ONNX of fitted, and what fell back, why."""
    unique = {(r["dataset"], r["task"], r["fit_rows"], r["model"]): r for r in rows}
    rows = list(unique.values())  # a file smaller than both sizes is fitted once
    table: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        table[(row["dataset"], row["task"], row["fit_rows"])].append(row)
    print("| dataset | task | fit rows | ONNX / fitted | fell back (reason) |")
    print("|---|---|---|---|---|")
    for (dataset, task, fit_rows), group in table.items():
        fitted = [r for r in group if r["onnx"] is not None]
        onnx = sum(bool(r["onnx"]) for r in fitted)
        back = "; ".join(f"{r['model']}: {r['reason']}" for r in fitted if not r["onnx"])
        print(f"| {dataset} | {task} | {fit_rows} | {onnx}/{len(fitted)} | {back} |")
    for name in ("shared", "generated", "extra"):
        fitted = [r for r in rows if r["group"] == name and r["onnx"] is not None]
        if fitted:
            share = sum(bool(r["onnx"]) for r in fitted)
            print(f"{name}: {share}/{len(fitted)} fitted models get a verified ONNX graph")


if __name__ == "__main__":
    main()
