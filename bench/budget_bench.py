"""Benchmark the time budget (issue 22): does `train` hold the clock, and on how many rows is
the shipped model fitted, with 0, 1 and 2 CPU hogs (busy loops) beside it?

Usage (from the repository root; the checkout measured may be another worktree):

    flock ../bench.lock nice -n 0 uv run python bench/budget_bench.py --label after
    flock ../bench.lock nice -n 0 uv run python bench/budget_bench.py \
        --checkout ../i22-before --label before

Each case is a fresh `mlcontainer train` process (imports included: the budget counts from
the command's start, as a user sees it), run with the checkout's own `.venv/bin/mlcontainer`
(not `uv run`, which recompiles bytecode on every call here). Cases:

- adult: ../shared/datasets/adult.csv, target income, default 60 s budget; ROC AUC.
- diamonds: a generated diamonds-like file of 54 000 rows (carat, cut, color, clarity, depth,
  table, x, y, z -> price), default budget; R², against one unbounded run (--time-budget 0).
- wine: ../shared/datasets/winequality-red.csv (no header; quality as classes); F1 macro.
- gen5k: a generated 5 000-row classification file with --time-budget 20; F1 macro.

Each hog is `python3 -c "while True: pass"`; the load average is recorded before and after
each case. Results are appended as JSON lines to --out and printed as a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: The checkout's parent holds ../shared (the datasets) and the generated files.
BESIDE = Path(__file__).resolve().parents[2]
DATA = BESIDE / "shared" / "datasets"
GENERATED = BESIDE / "benchdata"


def diamonds_like(path: Path, rows: int = 54_000, seed: int = 0) -> Path:
    """Write a diamonds-shaped regression file: price grows with carat, better cut, colour
    and clarity, with multiplicative noise (like the real one's log-price)."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    carat = np.round(rng.gamma(2.0, 0.4, rows) + 0.2, 2)
    cuts = np.array(["Fair", "Good", "Very Good", "Premium", "Ideal"])
    colors = np.array(list("JIHGFED"))
    clarities = np.array(["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"])
    cut = rng.choice(5, rows, p=[0.03, 0.09, 0.22, 0.26, 0.40])
    color = rng.choice(7, rows)
    clarity = rng.choice(8, rows, p=[0.01, 0.17, 0.24, 0.23, 0.15, 0.09, 0.07, 0.04])
    depth = np.round(rng.normal(61.7, 1.4, rows), 1)
    table = np.round(rng.normal(57.4, 2.2, rows), 0)
    x = np.round(6.5 * carat ** (1 / 3) + rng.normal(0, 0.05, rows), 2)
    y = np.round(x + rng.normal(0, 0.05, rows), 2)
    z = np.round(x * depth / 100, 2)
    log_price = (
        8.3
        + 1.8 * np.log(carat)
        + 0.05 * cut
        + 0.08 * color
        + 0.1 * clarity
        - 0.02 * np.abs(depth - 61.7)
        + rng.normal(0, 0.12, rows)
    )
    frame = pd.DataFrame({
        "carat": carat, "cut": cuts[cut], "color": colors[color],
        "clarity": clarities[clarity], "depth": depth, "table": table, "x": x, "y": y, "z": z,
        "price": np.round(np.exp(log_price)).astype(int),
    })  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def small_classification(path: Path, rows: int = 5_000, seed: int = 1) -> Path:
    """Write a 5 000-row, 12-column classification file with three classes."""
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 10))
    score = x[:, 0] + 0.7 * x[:, 1] * x[:, 2] + 0.5 * np.sin(3 * x[:, 3]) + rng.normal(0, 0.5, rows)
    label = np.digitize(score, [-0.6, 0.6])
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    frame["group"] = rng.choice(["a", "b", "c", "d"], rows)
    frame["label"] = np.array(["low", "mid", "high"])[label]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def cases() -> dict[str, tuple[list[str], str]]:
    """Each case's `train` arguments and the test metric reported."""
    diamonds = diamonds_like(GENERATED / "diamonds_like.csv")
    gen = small_classification(GENERATED / "gen5000.csv")
    return {
        "adult": (["-d", str(DATA / "adult.csv"), "-t", "income"], "roc_auc_ovr"),
        "diamonds": (["-d", str(diamonds), "-t", "price"], "r2"),
        "wine": (["-d", str(DATA / "winequality-red.csv"), "-t", "column_12"], "f1_macro"),
        "gen5k_20s": (["-d", str(gen), "-t", "label", "--time-budget", "20"], "f1_macro"),
    }


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0]


def run_case(exe: Path, args: list[str], metric: str) -> dict[str, object]:
    """Run one `train` and return its wall time, refit rows and test score."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        before = load()
        start = time.perf_counter()
        proc = subprocess.run(
            [str(exe), "train", *args, "-o", str(out)], capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        wall = time.perf_counter() - start
        row: dict[str, object] = {"wall": round(wall, 1), "load_before": before, "load": load()}
        if proc.returncode != 0:
            row["error"] = (proc.stdout + proc.stderr)[-800:]
            return row
        manifest = json.loads((out / "model.json").read_text())
        metrics = json.loads((out / "metrics.json").read_text())["metrics"]
        sel = manifest["selection"]
        row.update(
            model=sel["model"], fit_rows=sel["fit_rows"], train_rows=sel["train_rows"],
            score=metrics.get(metric), metric=metric,
            cut_lines=len(sel.get("budget", [])),
        )  # fmt: skip
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--label", default="after")
    parser.add_argument("--hogs", default="0,1,2")
    parser.add_argument("--cases", default="adult,diamonds,wine,gen5k_20s")
    parser.add_argument("--unbounded", action="store_true", help="also diamonds unbounded")
    parser.add_argument("--out", type=Path, default=GENERATED / "budget_bench.jsonl")
    ns = parser.parse_args()
    exe = ns.checkout / ".venv" / "bin" / "mlcontainer"
    table = cases()
    chosen = ns.cases.split(",")
    for hogs in (int(h) for h in ns.hogs.split(",")):
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            time.sleep(2 if hogs else 0)
            for name in chosen:
                args, metric = table[name]
                row = {"label": ns.label, "case": name, "hogs": hogs, **run_case(exe, args, metric)}
                print(json.dumps(row), flush=True)
                with ns.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
        finally:
            for p in procs:
                p.kill()
                p.wait()
    if ns.unbounded:
        args, metric = table["diamonds"]
        row = {
            "label": ns.label, "case": "diamonds_unbounded", "hogs": 0,
            **run_case(exe, [*args, "--time-budget", "0"], metric),
        }  # fmt: skip
        print(json.dumps(row), flush=True)
        with ns.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
