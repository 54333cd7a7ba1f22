"""Single-row latency of a selected ensemble against a single random forest on the same data.

Trains (unless the folders exist) `mlcontainer train` on a file where the ensemble wins (two
feature groups, each captured by another family; written by this script) and, on the same file,
`--models random_forest`; serves each with `mlcontainer serve` (auto runtime, 2 gthread workers,
as serve_bench's per-candidate figure) and runs wrk with one connection, one row per
/predict, interleaved over --repeats rounds; prints the medians and the ratio.

Usage:
    flock ../bench.lock uv run python bench/ensemble_bench.py [--duration 5 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from serve_bench import (
    CANDIDATE_SETUP,
    RESULTS,
    free_port_excluding,
    start,
    stop,
    wait_ready,
    wrk,
)

FOLDERS = RESULTS / "ensemble-models"
#: What each folder is trained with, besides the data.
TRAINED = {
    "ensemble": ["--metric", "roc_auc_ovr"],
    "random_forest": ["--metric", "roc_auc_ovr", "--models", "random_forest"],
}


def two_groups(path: Path, rows: int = 1200) -> Path:
    """A class that depends on a sum over ten features and on a step of two others."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    lin = rng.normal(size=(rows, 10))
    step = rng.uniform(-1, 1, size=(rows, 2))
    z = lin.sum(axis=1) / np.sqrt(10) + 2 * np.sign(step[:, 0]) * (step[:, 1] > 0)
    frame = pd.DataFrame(
        np.column_stack([lin, step]), columns=[*(f"l{i}" for i in range(10)), "s0", "s1"]
    )
    frame["y"] = np.where(z + 0.3 * rng.normal(size=rows) > 0, "yes", "no")
    frame.to_csv(path, index=False)
    return path


def train(name: str, data: Path) -> Path:
    out = FOLDERS / name
    if not (out / "model.json").exists():
        print(f"training {name} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "mlcontainer", "train", "--dataset", str(data), "--target",
             "y", "--output", str(out), *TRAINED[name]],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    args = parser.parse_args()
    FOLDERS.mkdir(parents=True, exist_ok=True)
    data = two_groups(FOLDERS / "two_groups.csv")
    row = json.loads(
        __import__("pandas").read_csv(data).drop(columns="y").head(1).to_json(orient="records")
    )
    body = json.dumps({"instances": row})
    logs = Path(tempfile.mkdtemp(prefix="ensemble-bench-"))
    targets: dict[str, Any] = {}
    processes = []
    try:
        for name in TRAINED:
            folder = train(name, data)
            port = free_port_excluding(targets)
            cmd = [sys.executable, "-m", "mlcontainer", "serve", "--model", str(folder),
                   "--port", str(port), "--log-level", "warning", *CANDIDATE_SETUP]  # fmt: skip
            process = start(cmd, logs / f"{name}.log")
            processes.append(process)
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/ready", process)
            manifest = json.loads((folder / "model.json").read_text())
            # (process, url, body key, port): the shape serve_bench's port picker reads.
            targets[name] = (process, url + "/predict", manifest, port)
        runs: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.repeats):
            for name, (_, url, _, _) in targets.items():
                runs[name].append(wrk(url, body, connections=1, seconds=args.duration)["p50 ms"])
    finally:
        for process in processes:
            stop(process)
    out: dict[str, Any] = {"loadavg": Path("/proc/loadavg").read_text().split()[:3]}
    for name, (_, _, manifest, _) in targets.items():
        out[name] = {
            "selected": manifest["model"]["name"],
            "description": manifest["model"]["description"],
            "runtime": manifest["runtime"]["default"],
            "p50 ms runs": runs[name],
            "p50 ms": statistics.median(runs[name]),
        }
    out["ratio"] = out["ensemble"]["p50 ms"] / out["random_forest"]["p50 ms"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
