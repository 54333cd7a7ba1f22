"""Serving benchmark: mlcontainer serve (ONNX, scikit-learn) vs in-process floors vs MLflow.

Load comes from `wrk` (Debian: `apt-get install -y wrk`) on 127.0.0.1; every run is bounded
by --duration. For each model (the default `mlcontainer train` selection on wine, and a random
forest on wine) it measures:

* in-process floors, no HTTP: the fitted scikit-learn pipeline's `predict_proba` on a ready
  DataFrame (what MLflow and BentoML sit on), and `predict_records` of this project's
  predictor with each runtime (`load_predictor(..., runtime="sklearn" | "onnx")`);
* `mlcontainer serve` with the ONNX runtime in two gunicorn set-ups (sync workers; gthread
  workers with keep-alive) and with the scikit-learn runtime (gthread): one row at
  concurrency 1 and 8, and 100-row batches at concurrency 8;
* `mlflow models serve` of the same fitted pipeline (MLflow 3.17.2 in its own virtual
  environment under bench/.venv-mlflow, never a project dependency), same scenarios;
* worker start -> ready: one-worker servers per runtime; the worker is killed (SIGKILL) and
  the time from the kill to the first 200 on /ready is the respawned worker's boot (the
  model loaded and its inference session warmed), median of --repeats kills; next to it the
  whole server's process start -> ready.

`--candidates` instead trains every candidate model on wine (one at a time) and measures the
single-row p50 over HTTP (1 connection, ONNX where verified) for each.

Usage:
    uv venv -p 3.11 bench/.venv-mlflow
    uv pip install --python bench/.venv-mlflow/bin/python mlflow==3.17.2 scikit-learn==1.9.1 \
        skops==0.16.0 numpy==2.4.6 pandas==3.1.1
    uv run python bench/serve_bench.py            # about 12 minutes on 2 cores
    uv run python bench/serve_bench.py --skip-mlflow --duration 5
    uv run python bench/serve_bench.py --candidates   # about 4 minutes

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
#: mlcontainer set-ups compared: name -> `mlcontainer serve` options.
SETUPS = {
    "onnx sync 2w": ["--runtime", "onnx", "--workers", "2"],
    "onnx gthread 2w x 4t": ["--runtime", "onnx", "--workers", "2", "--threads", "4"],
    "sklearn gthread 2w x 4t": ["--runtime", "sklearn", "--workers", "2", "--threads", "4"],
}
#: The set-up used for the per-candidate single-row figure.
CANDIDATE_SETUP = ["--runtime", "auto", "--workers", "2", "--threads", "4"]
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
    from mlcontainer.training.data.dataset import load_dataset

    manifest = json.loads((model_dir / "model.json").read_text())
    dataset = load_dataset(manifest["dataset"]["name"])
    records = json.loads(dataset.X.head(100).to_json(orient="records"))
    return [records[i % len(records)] for i in range(n)]


def _timed(call: Any, *, seconds: float) -> dict[str, float]:
    call()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50 ms": statistics.median(times),
        "p99 ms": times[max(0, int(len(times) * 0.99) - 1)],
        "req/s (1 core)": 1000 / statistics.mean(times),
    }


def floor(model_dir: Path, rows: list[dict[str, Any]], *, seconds: float) -> dict[str, float]:
    """In-process p50/p99 (ms) for 1 row and 100 rows: the bare pipeline, then each runtime."""
    import pandas as pd
    import skops.io

    from mlcontainer.inference.predictor import load_predictor

    data = (model_dir / "model.skops").read_bytes()
    pipeline = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    out: dict[str, float] = {}
    for label, batch in (("1 row", rows[:1]), ("100 rows", rows[:100])):
        frame = pd.DataFrame(batch)
        for key, value in _timed(
            lambda f=frame: pipeline.predict_proba(f), seconds=seconds
        ).items():
            out[f"sklearn pipeline {label} {key}"] = value
    for runtime in ("sklearn", "onnx"):
        predictor = load_predictor(model_dir, runtime, threads=1)
        predictor.warm_up()
        for label, batch in (("1 row", rows[:1]), ("100 rows", rows[:100])):
            timed = _timed(lambda p=predictor, b=batch: p.predict_records(b), seconds=seconds)
            for key, value in timed.items():
                out[f"{runtime} runtime {label} {key}"] = value
    return out


def children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def start_times(model_dir: Path, runtime: str, logs: Path, *, repeats: int) -> dict[str, Any]:
    """Process start -> ready, and worker (re)start -> ready, for a one-worker server."""
    port = free_port_excluding({})
    url = f"http://127.0.0.1:{port}/ready"
    cmd = [sys.executable, "-m", "mlcontainer", "serve", "--model", str(model_dir),
           "--port", str(port), "--log-level", "warning", "--runtime", runtime,
           "--workers", "1"]  # fmt: skip
    process_starts, worker_starts = [], []
    for _ in range(repeats):
        process = start(cmd, logs / f"start-{runtime}-{port}.log")
        try:
            process_starts.append(wait_ready(url, process, poll=0.01))
            for _ in range(2):
                (worker,) = children(process.pid)
                began = time.monotonic()
                os.kill(worker, signal.SIGKILL)
                # gunicorn forks a new worker at once; the listening socket stays open, so
                # the first 200 comes from the new worker with the model loaded.
                wait_ready(url, process, poll=0.005)
                worker_starts.append(time.monotonic() - began)
        finally:
            stop(process)
    return {
        "process start -> ready s": statistics.median(process_starts),
        "worker start -> ready s": statistics.median(worker_starts),
        "worker start -> ready runs s": worker_starts,
    }


def wait_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float = 180, poll: float = 0.2
) -> float:
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
        time.sleep(poll)
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


def _floor_line(floor_: dict[str, float]) -> str:
    parts = []
    for what in ("sklearn pipeline", "sklearn runtime", "onnx runtime"):
        parts.append(
            f"{what} 1 row p50 {floor_[f'{what} 1 row p50 ms']:.3f} ms "
            f"(p99 {floor_[f'{what} 1 row p99 ms']:.3f}), 100 rows p50 "
            f"{floor_[f'{what} 100 rows p50 ms']:.3f} ms"
        )
    trip = floor_.get("GET /health c=1 p50 ms")
    return "; ".join(parts) + (
        f"; HTTP round trip (`GET /health`, c=1) p50 {trip:.2f} ms" if trip else ""
    )


def markdown(report: dict[str, Any]) -> str:
    """Render a results file as the tables recorded in bench/README.md."""
    lines = []
    for name, entry in report["models"].items():
        floor_ = entry["floor"]
        lines += [
            f"**{name}** (`{entry['model']}`, served runtime by default: "
            f"{entry.get('default runtime', '?')}). In-process floors: {_floor_line(floor_)}",
            "",
            "| server | scenario | req/s | p50 ms | p99 ms |",
            "|---|---|---:|---:|---:|",
        ]
        targets = [t for t in entry if t.startswith(("mlcontainer", "mlflow"))]
        for label, *_ in SCENARIOS:
            for target in targets:
                r = entry[target][label]
                bad = f" ({r['non-2xx']:.0f} non-2xx)" if r["non-2xx"] else ""
                lines.append(
                    f"| {target} | {label} | {r['req/s']:.1f}{bad} | {r['p50 ms']:.2f} "
                    f"| {r['p99 ms']:.2f} |"
                )
        onnx = [t for t in targets if t.startswith("mlcontainer onnx")]
        sklearn = [t for t in targets if t.startswith("mlcontainer sklearn")]
        theirs = [t for t in targets if t.startswith("mlflow")]
        lines.append("")
        for label, *_ in SCENARIOS:
            best = max(entry[t][label]["req/s"] for t in onnx)
            versus = [f"best ONNX {best:.1f} req/s"]
            if sklearn:
                ours = max(entry[t][label]["req/s"] for t in sklearn)
                versus.append(f"{best / ours:.1f}x the scikit-learn runtime ({ours:.1f})")
            if theirs:
                mlflow = max(entry[t][label]["req/s"] for t in theirs)
                versus.append(f"{best / mlflow:.1f}x best MLflow ({mlflow:.1f})")
            lines.append(f"- {label}: " + ", ".join(versus))
        for runtime, times in entry.get("start", {}).items():
            runs = ", ".join(f"{s:.2f}" for s in times["worker start -> ready runs s"])
            lines.append(
                f"- {runtime} runtime, one worker: worker start -> ready "
                f"{times['worker start -> ready s']:.2f} s ({runs}); process start -> ready "
                f"{times['process start -> ready s']:.2f} s"
            )
        lines.append("")
    if "candidates" in report:
        lines += [
            "| candidate (wine) | runtime served | 1 row c=1 p50 ms | p99 ms | req/s |",
            "|---|---|---:|---:|---:|",
        ]
        for name, r in report["candidates"].items():
            lines.append(
                f"| {name} | {r['runtime']} | {r['p50 ms']:.2f} | {r['p99 ms']:.2f} "
                f"| {r['req/s']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def candidates(duration: int, logs: Path) -> dict[str, Any]:
    """Single-row p50 over HTTP (1 connection) for every candidate model, one at a time."""
    from mlcontainer.training.search.models import MODELS

    out: dict[str, Any] = {}
    for name in MODELS:
        model_dir = train(f"candidate-{name}", ["--models", name, "--cv", "2"])
        runtime = json.loads((model_dir / "model.json").read_text()).get("runtime") or {}
        port = free_port_excluding({})
        cmd = [sys.executable, "-m", "mlcontainer", "serve", "--model", str(model_dir),
               "--port", str(port), "--log-level", "warning", *CANDIDATE_SETUP]  # fmt: skip
        process = start(cmd, logs / f"candidate-{name}-{port}.log")
        try:
            wait_ready(f"http://127.0.0.1:{port}/ready", process)
            body = json.dumps({"instances": sample_rows(model_dir, 1)})
            url = f"http://127.0.0.1:{port}/predict"
            runs = [wrk(url, body, connections=1, seconds=duration) for _ in range(3)]
        finally:
            stop(process)
        out[name] = {"runtime": runtime.get("default", "sklearn"), **median_runs(runs)}
        print(f"  {name}: {out[name]}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--skip-mlflow", action="store_true")
    parser.add_argument("--models", default=",".join(TRAINED))
    parser.add_argument("--candidates", action="store_true", help="per-candidate 1-row p50 only")
    parser.add_argument("--report", type=Path, help="print the tables of a results file; no run")
    args = parser.parse_args()
    if args.report:
        print(markdown(json.loads(args.report.read_text())))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    use_mlflow = not args.skip_mlflow and not args.candidates
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
    if args.candidates:
        report["candidates"] = candidates(args.duration, logs)
    for name in [] if args.candidates else args.models.split(","):
        report["models"][name] = bench_model(name, args, use_mlflow, logs)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"serve-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(f"wrote {path}", file=sys.stderr)


def bench_model(
    name: str, args: argparse.Namespace, use_mlflow: bool, logs: Path
) -> dict[str, Any]:
    """Every server for one model, interleaved rounds, then the start times."""
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
    entry: dict[str, Any] = {
        "model": manifest["name"],
        "default runtime": (manifest.get("runtime") or {}).get("default", "sklearn"),
        "floor": median_runs(floors),
    }
    for target, by_label in runs.items():
        entry[target] = {label: median_runs(r) for label, r in by_label.items()}
    entry["start"] = {
        runtime: start_times(model_dir, runtime, logs, repeats=args.repeats)
        for runtime in ("onnx", "sklearn")
    }
    return entry


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
