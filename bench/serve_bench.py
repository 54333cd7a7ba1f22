"""Serving benchmark: mlcontainer serve vs the in-process floor vs `mlflow models serve`.

Load comes from `wrk` (Debian: `apt-get install -y wrk`) on 127.0.0.1; every run is bounded
by --duration. For each model (the default `mlcontainer train` selection on wine, and a random
forest on wine) it measures:

* the in-process floor: `Predictor.predict_records` on the same rows, no HTTP;
* `mlcontainer serve` in two gunicorn set-ups (sync workers; gthread workers with keep-alive):
  one row at concurrency 1 and 8, and 100-row batches at concurrency 8;
* `mlflow models serve` of the same fitted pipeline (MLflow 3.17.2 in its own virtual
  environment under bench/.venv-mlflow, never a project dependency), same scenarios.

Usage:
    uv venv -p 3.11 bench/.venv-mlflow
    uv pip install --python bench/.venv-mlflow/bin/python mlflow==3.17.2 scikit-learn==1.9.1 \
        skops==0.16.0 numpy==2.4.6 pandas==3.1.1
    uv run python bench/serve_bench.py            # about 10 minutes on 2 cores
    uv run python bench/serve_bench.py --skip-mlflow --duration 5

Results (medians over --repeats runs) go to bench/results/serve-<time>.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
MODELS = RESULTS / "serve-models"
MLFLOW_PYTHON = BENCH / ".venv-mlflow" / "bin" / "python"
PORTS = range(18500, 18600)
#: gunicorn set-ups compared: name -> `mlcontainer serve` options.
SETUPS = {
    "sync 2w": ["--workers", "2"],
    "gthread 2w x 4t": ["--workers", "2", "--threads", "4"],
}
SCENARIOS = (("1 row, c=1", 1, 1), ("1 row, c=8", 1, 8), ("100 rows, c=8", 100, 8))
TRAINED = {
    "default": [],  # `mlcontainer train` with its defaults: every candidate, best by f1_macro
    "random_forest": ["--models", "random_forest"],
}


def train(name: str, options: list[str]) -> Path:
    out = MODELS / name
    if not (out / "model.json").exists():
        print(f"training {name} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "mlcontainer", "train", "--output", str(out), *options],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def sample_rows(model_dir: Path, n: int) -> list[dict[str, Any]]:
    """Real rows of the training data (features only), cycled to ``n``."""
    from mlcontainer.data import load_dataset

    manifest = json.loads((model_dir / "model.json").read_text())
    dataset = load_dataset(manifest["dataset"]["name"])
    records = json.loads(dataset.X.head(100).to_json(orient="records"))
    return [records[i % len(records)] for i in range(n)]


def floor(model_dir: Path, rows: list[dict[str, Any]], *, seconds: float) -> dict[str, float]:
    """Median and p99 of in-process `predict_records` for 1 row and for 100 rows, in ms."""
    from mlcontainer.prediction import Predictor

    predictor = Predictor.from_dir(model_dir)
    out: dict[str, float] = {}
    for label, batch in (("1 row", rows[:1]), ("100 rows", rows[:100])):
        predictor.predict_records(batch)
        times = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            predictor.predict_records(batch)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        out[f"{label} p50 ms"] = statistics.median(times)
        out[f"{label} p99 ms"] = times[int(len(times) * 0.99) - 1]
        out[f"{label} req/s (1 core)"] = 1000 / statistics.mean(times)
    return out


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 180) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout}s")


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLCONTAINER_", "PROMETHEUS"))}
    # MLflow starts `uvicorn` through bash: its venv's bin must come first on PATH.
    env["PATH"] = f"{Path(cmd[0]).parent}{os.pathsep}{env.get('PATH', '')}"
    with log.open("wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=log.parent)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, body: str | None, *, connections: int, seconds: int) -> dict[str, float]:
    """Run wrk (a POST of ``body``, or a GET); return req/s, p50, p99 (ms), non-2xx count."""
    script = textwrap.dedent(
        f"""
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        wrk.body = [==[{body}]==]
        """
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    post = ["-s", fh.name] if body is not None else []
    try:
        result = subprocess.run(
            ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s",
             "--latency", *post, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )  # fmt: skip
    finally:
        Path(fh.name).unlink()
    text = result.stdout

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not m:
            raise SystemExit(f"cannot read {pct}% from wrk:\n{text}")
        return float(m.group(1)) * _UNITS[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    return {
        "req/s": float(rps.group(1)) if rps else 0.0,
        "p50 ms": latency("50"),
        "p99 ms": latency("99"),
        "non-2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket errors": 1.0 if errors else 0.0,
    }


def median_runs(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


MLFLOW_SAVE = """
import sys, mlflow.sklearn, skops.io
data = open(sys.argv[1], "rb").read()
pipeline = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
mlflow.sklearn.save_model(pipeline, sys.argv[2], serialization_format="pickle")
"""


def mlflow_model(model_dir: Path) -> Path:
    """Save the same fitted pipeline in MLflow's format, inside MLflow's own venv."""
    out = model_dir.parent / f"{model_dir.name}-mlflow"
    if not (out / "MLmodel").exists():
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run(
            [str(MLFLOW_PYTHON), "-c", MLFLOW_SAVE, str(model_dir / "model.skops"), str(out)],
            check=True,
            cwd=model_dir.parent,  # not the project folder: MLflow would export its uv.lock
        )
    return out


def servers(
    name: str, model_dir: Path, use_mlflow: bool, logs: Path, targets: dict[str, Any]
) -> dict[str, Any]:
    """Start every server for one model at once: runs then interleave, so noise hits all alike.

    Fills and returns ``targets``: name -> (process, url, body key, port).
    """
    for setup, options in SETUPS.items():
        port = free_port_excluding(targets)
        cmd = [sys.executable, "-m", "mlcontainer", "serve", "--model", str(model_dir),
               "--port", str(port), "--log-level", "warning", *options]  # fmt: skip
        process = start(cmd, logs / f"{name}-mlcontainer-{port}.log")
        url = f"http://127.0.0.1:{port}"
        targets[f"mlcontainer {setup} /predict"] = (process, url + "/predict", "instances", port)
        if setup == next(iter(SETUPS)):
            targets[f"mlcontainer {setup} /invocations"] = (
                process, url + "/invocations", "dataframe_records", port,
            )  # fmt: skip
        took = wait_ready(url + "/ready", process)
        print(f"  mlcontainer {setup} ready in {took:.1f}s", file=sys.stderr)
    if use_mlflow:
        saved = mlflow_model(model_dir)
        for workers in (1, 2):
            port = free_port_excluding(targets)
            cmd = [str(MLFLOW_PYTHON.parent / "mlflow"), "models", "serve", "-m", str(saved),
                   "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers)]  # fmt: skip
            process = start(cmd, logs / f"{name}-mlflow-{port}.log")
            url = f"http://127.0.0.1:{port}"
            targets[f"mlflow {workers}w /invocations"] = (
                process, url + "/invocations", "dataframe_records", port,
            )  # fmt: skip
            took = wait_ready(url + "/ping", process)
            print(f"  mlflow {workers}w ready in {took:.1f}s", file=sys.stderr)
    return targets


def free_port_excluding(targets: dict[str, Any]) -> int:
    taken = {t[3] for t in targets.values()}
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise SystemExit("no free port in 18500-18599")


def markdown(report: dict[str, Any]) -> str:
    """Render a results file as the tables recorded in bench/README.md."""
    lines = []
    for name, entry in report["models"].items():
        floor_ = entry["floor"]
        trip = floor_.get("GET /health c=1 p50 ms")
        lines += [
            f"**{name}** (`{entry['model']}`): in-process floor, 1 row p50 "
            f"{floor_['1 row p50 ms']:.2f} ms (p99 {floor_['1 row p99 ms']:.2f}); "
            f"100 rows p50 {floor_['100 rows p50 ms']:.2f} ms"
            + (f"; HTTP round trip (`GET /health`, c=1) p50 {trip:.2f} ms" if trip else ""),
            "",
            "| server | scenario | req/s | p50 ms | p99 ms |",
            "|---|---|---:|---:|---:|",
        ]
        targets = [t for t in entry if t not in ("model", "floor")]
        for label, *_ in SCENARIOS:
            for target in targets:
                r = entry[target][label]
                bad = f" ({r['non-2xx']:.0f} non-2xx)" if r["non-2xx"] else ""
                lines.append(
                    f"| {target} | {label} | {r['req/s']:.1f}{bad} | {r['p50 ms']:.2f} "
                    f"| {r['p99 ms']:.2f} |"
                )
        ours = [t for t in targets if t.startswith("mlcontainer")]
        theirs = [t for t in targets if t.startswith("mlflow")]
        lines.append("")
        sync_c1 = entry[ours[0]]["1 row, c=1"]["p50 ms"]
        lines.append(
            f"- overhead over the floor, 1 row c=1 p50: {sync_c1 - floor_['1 row p50 ms']:+.2f} ms "
            f"({ours[0]})"
        )
        if theirs:
            for label, *_ in SCENARIOS:
                best_ours = max(entry[t][label]["req/s"] for t in ours)
                best_theirs = max(entry[t][label]["req/s"] for t in theirs)
                lines.append(
                    f"- {label}: best mlcontainer {best_ours:.1f} req/s vs best MLflow "
                    f"{best_theirs:.1f} req/s = {best_ours / best_theirs:.2f}x"
                )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--models", default=",".join(TRAINED))
    parser.add_argument("--report", type=Path, help="print the tables of a results file; no run")
    args = parser.parse_args()
    if args.report:
        print(markdown(json.loads(args.report.read_text())))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    use_mlflow = not args.skip_mlflow
    if use_mlflow and not MLFLOW_PYTHON.exists():
        raise SystemExit(
            f"{MLFLOW_PYTHON} is missing: see the usage in this file, or --skip-mlflow"
        )
    logs = RESULTS / "serve-logs"
    logs.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "duration_s": args.duration,
        "repeats": args.repeats,
        "models": {},
    }
    for name in args.models.split(","):
        model_dir = train(name, TRAINED[name])
        manifest = json.loads((model_dir / "model.json").read_text())
        rows = sample_rows(model_dir, 100)
        print(f"{name}: {manifest['name']}", file=sys.stderr)
        started: dict[str, Any] = {}
        try:
            targets = servers(name, model_dir, use_mlflow, logs, started)
        except BaseException:
            for process, *_ in {id(t[0]): t for t in started.values()}.values():
                stop(process)  # a later server failed: do not leave the earlier ones running
            raise
        runs: dict[str, dict[str, list[dict[str, float]]]] = {t: {} for t in targets}
        floors: list[dict[str, float]] = []
        try:
            for round_ in range(args.repeats):
                floors.append(floor(model_dir, rows, seconds=2))
                # The HTTP round trip with no model work: gunicorn + Flask + loopback.
                health = targets[next(iter(targets))][1].rsplit("/", 1)[0] + "/health"
                trip = wrk(health, None, connections=1, seconds=args.duration)
                floors[-1]["GET /health c=1 p50 ms"] = trip["p50 ms"]
                for label, n_rows, connections in SCENARIOS:
                    for target, (_, url, key, _) in targets.items():
                        body = json.dumps({key: rows[:n_rows]})
                        result = wrk(url, body, connections=connections, seconds=args.duration)
                        runs[target].setdefault(label, []).append(result)
                        print(f"  [{round_}] {target} {label}: {result}", file=sys.stderr)
        finally:
            for process, *_ in {id(t[0]): t for t in targets.values()}.values():
                stop(process)
        entry: dict[str, Any] = {"model": manifest["name"], "floor": median_runs(floors)}
        for target, by_label in runs.items():
            entry[target] = {label: median_runs(r) for label, r in by_label.items()}
        report["models"][name] = entry
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"serve-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
