"""mlcontainer against its peers, FLAML and AutoGluon, on every shared dataset at one budget.

    uv run python bench/peer_bench.py setup                   # the venvs, under ../benchvenvs
    uv run python bench/peer_bench.py run --seeds 3 --budget 60 --record bench/results/peer.json
    uv run python bench/peer_bench.py report bench/results/peer.json   # the markdown table again

Each tool lives in a venv of its own made with uv (never a project dependency):
``mlcontainer`` (this checkout, ``[train]``, reinstalled at every ``setup`` so "before" and
"after" are the code checked out), ``flaml`` (``flaml[automl]``) and ``autogluon``
(``autogluon.tabular[lightgbm,catboost,xgboost]``; CPU only, no torch models are asked for).
Every tool gets the same training rows and the same held-out rows per (dataset, seed): a
stratified split (75/25) made here with the seed, written as headed CSV files; the target's
truth stays here, and each run's predictions are scored here, the same way for all:

* binary classes: ROC AUC; several classes: accuracy (and macro F1 alongside); a number: R².
* wall: the tool's training call (data already on disk); peak memory: the run's child process,
  ``/usr/bin/time``'s maximum resident set (the largest process, not a sum over workers);
  latency: one row predicted by the saved model reloaded, median of 30 calls in process.

Titanic's ``alive`` (the target restated) is removed for every tool: with it every tool
scores 1.0 and the row says nothing. Runs go one after the other (2 shared cores); take the
load average from the record and read ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
VENVS = Path(os.environ.get("BENCH_VENVS", str(ROOT.parent / "benchvenvs")))
WORKER = Path(__file__).resolve().parent / "peer_worker.py"
PYTHON = "3.11"
#: What each venv installs.
PACKAGES: dict[str, list[str]] = {
    "mlcontainer": [f"{ROOT}[train]"],
    "flaml": ["flaml[automl]", "pandas"],
    "autogluon": ["autogluon.tabular[lightgbm,catboost,xgboost]"],
}
#: (tool, preset) pairs run; the tool names a venv.
CONFIGS: tuple[tuple[str, str], ...] = (
    ("mlcontainer", "default"),
    ("flaml", "default"),
    ("autogluon", "medium_quality"),  # AutoGluon's default preset
    ("autogluon", "high_quality"),
)
TEST_SHARE = 0.25
#: Seconds past the budget after which a run is stopped (and recorded as such).
GRACE = 240


@dataclass(frozen=True)
class Data:
    """A shared file, how to read it, its target and task (see shared/datasets/README.md)."""

    file: str
    target: str
    task: str
    header: bool = True
    drop: tuple[str, ...] = ()


DATASETS: dict[str, Data] = {
    "titanic": Data("titanic.csv", "survived", "classification", drop=("alive",)),
    "pima": Data("pima-indians-diabetes.csv", "column_9", "classification", header=False),
    "sonar": Data("sonar.csv", "column_61", "classification", header=False),
    "auto_imports": Data("auto_imports.csv", "column_26", "regression", header=False),
    "winequality-red": Data("winequality-red.csv", "column_12", "classification", header=False),
    "adult": Data("adult.csv", "income", "classification"),  # the largest: last
}


def setup(tools: list[str]) -> None:
    """Make (or refresh) each tool's venv with uv."""
    VENVS.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        venv = VENVS / tool
        if not (venv / "bin" / "python").exists():
            subprocess.run(["uv", "venv", "-q", "-p", PYTHON, str(venv)], check=True)
        started = time.perf_counter()
        install = ["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
        if tool == "mlcontainer":
            install.append("--reinstall-package=mlcontainer")
        done = subprocess.run(
            [*install, *PACKAGES[tool]], capture_output=True, text=True, check=False
        )
        took = time.perf_counter() - started
        if done.returncode != 0:
            print(f"{tool}: install failed after {took:.0f} s:\n{done.stderr[-3000:]}")
            continue
        print(f"{tool}: ready in {took:.0f} s ({venv})")


def _frame(data: Data) -> Any:
    import pandas as pd

    path = SHARED / data.file
    frame = pd.read_csv(
        path,
        header=0 if data.header else None,
        na_values=["?"],
        skipinitialspace=True,
    )
    if not data.header:
        frame.columns = [f"column_{j + 1}" for j in range(frame.shape[1])]
    return frame.drop(columns=list(data.drop))


def _split(name: str, data: Data, seed: int, work: Path) -> Any:
    """Write train.csv and test.csv (no target) into ``work``; return the test truth."""
    from sklearn.model_selection import train_test_split

    frame = _frame(data)
    y = frame[data.target]
    strata = y if data.task == "classification" else None
    train, test = train_test_split(frame, test_size=TEST_SHARE, random_state=seed, stratify=strata)
    train.to_csv(work / "train.csv", index=False)
    test.drop(columns=[data.target]).to_csv(work / "test.csv", index=False)
    del name
    return test[data.target]


def _score(data: Data, truth: Any, result: dict[str, Any]) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, r2_score, roc_auc_score

    if data.task == "regression":
        return {"r2": float(r2_score(truth.astype(float), result["values"]))}
    labels = [str(v) for v in truth]
    scores = {
        "accuracy": float(accuracy_score(labels, result["labels"])),
        "macro_f1": float(f1_score(labels, result["labels"], average="macro")),
    }
    classes = result["classes"]
    if len(set(labels)) == 2 and len(classes) == 2:
        proba = np.asarray(result["probabilities"], dtype=float)[:, 1]
        scores["roc_auc"] = float(roc_auc_score([lab == classes[1] for lab in labels], proba))
    return scores


def primary(data: Data, scores: dict[str, float]) -> str:
    """The score the table shows for a dataset."""
    if data.task == "regression":
        return "r2"
    return "roc_auc" if "roc_auc" in scores else "accuracy"


def run_one(tool: str, preset: str, name: str, seed: int, budget: float) -> dict[str, Any]:
    """One tool on one split, in a child process of its venv; scored here."""
    data = DATASETS[name]
    row: dict[str, Any] = {"tool": tool, "preset": preset, "dataset": name, "seed": seed}
    with tempfile.TemporaryDirectory(prefix=f"peer-{tool}-") as tmp:
        work = Path(tmp)
        truth = _split(name, data, seed, work)
        python = VENVS / tool / "bin" / "python"
        command = ["/usr/bin/time", "-f", "%M", str(python), str(WORKER), tool, preset,
                   str(work), data.target, data.task, str(budget), str(seed)]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "2", "MLCONTAINER_LOG_LEVEL": "warning"}
        started = time.perf_counter()
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=budget + GRACE,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {**row, "error": f"stopped after {budget + GRACE:.0f} s"}
        row["process_s"] = round(time.perf_counter() - started, 1)
        tail = done.stderr.strip().splitlines()
        if tail and tail[-1].isdigit():  # /usr/bin/time's line: the peak in KiB
            row["peak_mb"] = round(int(tail.pop()) / 1024)
        tail = [t for t in tail if not t.startswith("Command exited with")]
        if done.returncode != 0 or not (work / "result.json").exists():
            return {**row, "error": "\n".join(tail[-6:])}
        result = json.loads((work / "result.json").read_text())
    scores = _score(data, truth, result)
    return {
        **row,
        "scores": scores,
        "score": scores[primary(data, scores)],
        "metric": primary(data, scores),
        "wall_s": round(result["wall"], 1),
        "latency_ms": round(result["latency_ms"], 2),
        "model": result.get("best") or result.get("runtime"),
    }


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per dataset and tool, medians over seeds."""
    lines = [
        "| dataset | metric | tool | score | wall s | peak MB | 1-row ms | seeds | errors |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in DATASETS:
        for tool, preset in CONFIGS:
            runs = [r for r in rows if r["dataset"] == name and (r["tool"], r["preset"]) ==
                    (tool, preset)]  # fmt: skip
            if not runs:
                continue
            good = [r for r in runs if "error" not in r]
            errors = "; ".join(r["error"].splitlines()[-1][:60] for r in runs if "error" in r)
            metric = good[0]["metric"] if good else "-"

            def median(key: str, good: list[dict[str, Any]] = good) -> str:
                values = [r[key] for r in good if r.get(key) is not None]
                return f"{statistics.median(values):.4g}" if values else "-"

            label = tool if preset == "default" else f"{tool} ({preset})"
            lines.append(
                f"| {name} | {metric} | {label} | {median('score')} | {median('wall_s')} | "
                f"{median('peak_mb')} | {median('latency_ms')} | {len(good)} | {errors} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("setup", help="create or refresh the venvs")
    make.add_argument("--tools", default="mlcontainer,flaml,autogluon")
    go = sub.add_parser("run", help="run every tool on every dataset and seed")
    go.add_argument("--seeds", type=int, default=3)
    go.add_argument("--budget", type=float, default=60.0)
    go.add_argument("--datasets", default=",".join(DATASETS))
    go.add_argument("--tools", default=",".join(sorted({t for t, _ in CONFIGS})))
    go.add_argument("--record", type=Path, default=None, help="append JSON lines here")
    show = sub.add_parser("report", help="the markdown table of a record")
    show.add_argument("record", type=Path)
    args = parser.parse_args()
    if args.command == "setup":
        setup(args.tools.split(","))
        return
    if args.command == "report":
        rows = [json.loads(line) for line in args.record.read_text().splitlines() if line]
        print(table([r for r in rows if "tool" in r]))
        return
    tools = set(args.tools.split(","))
    rows = []
    if args.record is not None:
        args.record.parent.mkdir(parents=True, exist_ok=True)
    for seed in range(args.seeds):
        for name in args.datasets.split(","):
            for tool, preset in CONFIGS:
                if tool not in tools:
                    continue
                load = Path("/proc/loadavg").read_text().split()[0]
                row = {**run_one(tool, preset, name, seed, args.budget), "load": float(load)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.record is not None:
                    with args.record.open("a") as handle:
                        handle.write(json.dumps(row) + "\n")
    print(table(rows))


if __name__ == "__main__":
    sys.exit(main())
