"""Image benchmark: the project's multi-stage uv image against the lab's single-stage pip one.

Also the serving-only target (`--target serve`: ONNX model, no scikit-learn): its added size
against the full image's, and its start -> healthy. All are built in the same run from a copy
of the build context (so the working tree is never touched); the full and the single-stage
image have the same dependencies (requirements.txt is exported from uv.lock, train extra
included):

- added size: image size minus its base image (`python:3.11-slim`) size;
- cold build: `--no-cache` (every layer rebuilt; the uv download cache mount stays warm,
  pip here keeps no download cache);
- code-only rebuild: one comment appended to src/mlcontainer/cli.py, then a cached build;
  for the multi-stage image also up to the `project` stage only (the package alone);
- training-code rebuild (multi-stage only): one comment appended to
  src/mlcontainer/training/search/compare.py, which the baked model depends on, so it is
  retrained (the single-stage image reinstalls everything on any change, as for the code-only
  one);
- start -> healthy: from `docker run -d` to the first 200 on /health, polled every 50 ms;
  the lab's demo image gives the engine's own floor for the same measurement.

    eval "$(../shared/container-engine/up)"
    uv run python bench/image_bench.py --repeat 3

Prints a Markdown table and writes bench/results/image_bench.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASE = "python:3.11-slim"
CONTEXT_FILES = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "requirements.txt",
    "train.py",
    "docker/trim-venv.sh",
)
SINGLE_STAGE = ROOT / "bench" / "Dockerfile.single-stage"
DEMO = ROOT / "examples" / "flask-docker-demo"
PORT = 19950


def docker(*args: str, timeout: float = 1800) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def timed_build(context: Path, tag: str, *args: str) -> float:
    started = time.perf_counter()
    docker("build", "-t", tag, *args, str(context))
    return time.perf_counter() - started


def size_mb(ref: str) -> float:
    return json.loads(docker("image", "inspect", ref))[0]["Size"] / 1e6


def copy_context(target: Path) -> Path:
    target.mkdir(parents=True)
    for name in CONTEXT_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (target / "bench").mkdir()
    shutil.copy2(SINGLE_STAGE, target / "bench" / SINGLE_STAGE.name)
    return target


def touch_code(context: Path, n: int, module: str = "cli.py") -> None:
    source = context / "src" / "mlcontainer" / module
    source.write_text(source.read_text() + f"\n# code-only change {n} {uuid.uuid4().hex}\n")


def start_to_healthy(image: str, *options: str, command: tuple[str, ...] = ()) -> float:
    name = f"image-bench-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    docker("run", "-d", "--name", name, "-p", f"{PORT}:8080", *options, image, *command)
    try:
        while time.perf_counter() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        raise SystemExit(f"{image} never answered /health:\n{docker('logs', name)[-2000:]}")
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def export_baked_model(image: str, target: Path) -> Path:
    """Copy the model baked into ``image`` out, so the single-stage image serves the same one."""
    # Streamed with tar: `docker cp` from a created container sees the (still empty) volume.
    name = f"image-bench-cp-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    tar = subprocess.run(
        ["docker", "run", "--name", name, "--entrypoint", "tar", image,
         "-C", "/app/artifacts", "-cf", "-", "."],
        capture_output=True, check=True,
    )  # fmt: skip
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["tar", "-C", str(target), "-xf", "-"], input=tar.stdout, check=True)
    return target


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per rebuild/start figure")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    multi, single, demo = f"bench-multi:{run}", f"bench-single:{run}", f"bench-demo:{run}"
    serve = f"bench-serve:{run}"
    engine = docker("version", "--format", "{{.Server.Version}}").strip()
    results: dict[str, Any] = {"repeat": args.repeat, "engine": engine}
    with tempfile.TemporaryDirectory() as tmp:
        context = copy_context(Path(tmp) / "context")
        single_args = ("-f", str(context / "bench" / SINGLE_STAGE.name))
        print("cold builds ...", flush=True)
        results["cold_build_s"] = {
            "multi": round(timed_build(context, multi, "--no-cache"), 1),
            "single": round(timed_build(context, single, "--no-cache", *single_args), 1),
            # Cached builder stages (shared with multi): the serving venv, the final stage.
            "serve_after_multi": round(timed_build(context, serve, "--target", "serve"), 1),
        }
        base = size_mb(BASE)
        results["added_mb"] = {
            "multi": round(size_mb(multi) - base, 1),
            "single": round(size_mb(single) - base, 1),
            "serve": round(size_mb(serve) - base, 1),
        }
        rebuild: dict[str, list[float]] = {
            "multi": [], "multi_to_project_stage": [], "single": [], "multi_training_change": []
        }  # fmt: skip
        for n in range(args.repeat):
            print(f"code-only rebuild {n + 1}/{args.repeat} ...", flush=True)
            touch_code(context, n)
            rebuild["multi_to_project_stage"].append(
                timed_build(context, f"{multi}-project", "--target", "project")
            )
            rebuild["multi"].append(timed_build(context, multi))
            rebuild["single"].append(timed_build(context, single, *single_args))
            print(f"training-code rebuild {n + 1}/{args.repeat} ...", flush=True)
            touch_code(context, n, "training/search/compare.py")
            rebuild["multi_training_change"].append(timed_build(context, multi))
        results["code_rebuild_s"] = {k: median(v) for k, v in rebuild.items()}
        results["code_rebuild_runs_s"] = {k: [round(x, 1) for x in v] for k, v in rebuild.items()}

        model = export_baked_model(multi, Path(tmp) / "model")
        model.chmod(0o755)
        timed_build(DEMO, demo)
        starts: dict[str, list[float]] = {"multi": [], "serve": [], "single": [], "demo": []}
        for n in range(args.repeat):
            print(f"start -> healthy {n + 1}/{args.repeat} ...", flush=True)
            starts["multi"].append(start_to_healthy(multi, command=("serve",)))
            starts["serve"].append(start_to_healthy(serve))
            starts["single"].append(start_to_healthy(single, "-v", f"{model}:/app/artifacts:ro"))
            starts["demo"].append(start_to_healthy(demo))
        results["start_to_healthy_s"] = {k: median(v) for k, v in starts.items()}
        results["start_runs_s"] = {k: [round(x, 2) for x in v] for k, v in starts.items()}
    for ref in (multi, f"{multi}-project", serve, single, demo):
        subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)

    added, cold, code = results["added_mb"], results["cold_build_s"], results["code_rebuild_s"]
    results["ratios"] = {
        "added_size_multi_over_single": round(added["multi"] / added["single"], 2),
        "added_size_serve_over_multi": round(added["serve"] / added["multi"], 2),
        "code_rebuild_single_over_multi": round(code["single"] / code["multi"], 2),
        "code_rebuild_single_over_multi_project_stage": round(
            code["single"] / code["multi_to_project_stage"], 2
        ),
        "training_rebuild_single_over_multi": round(
            code["single"] / code["multi_training_change"], 2
        ),
    }
    out = ROOT / "bench" / "results" / "image_bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    start = results["start_to_healthy_s"]
    print(
        "\n| figure | multi-stage uv | single-stage pip | ratio |\n|---|---|---|---|\n"
        f"| added size over {BASE} | {added['multi']} MB | {added['single']} MB | "
        f"{results['ratios']['added_size_multi_over_single']} |\n"
        f"| cold build | {cold['multi']} s | {cold['single']} s | |\n"
        f"| code-only rebuild (whole image) | {code['multi']} s | {code['single']} s | "
        f"{results['ratios']['code_rebuild_single_over_multi']}x faster |\n"
        f"| code-only rebuild (to the package stage) | {code['multi_to_project_stage']} s | | "
        f"{results['ratios']['code_rebuild_single_over_multi_project_stage']}x faster |\n"
        f"| training-code rebuild (retrains) | {code['multi_training_change']} s | "
        f"{code['single']} s | "
        f"{results['ratios']['training_rebuild_single_over_multi']}x faster |\n"
        f"| start -> first 200 on /health | {start['multi']} s | {start['single']} s | "
        f"(demo image: {start['demo']} s) |\n"
        f"\nserving-only target: adds {added['serve']} MB "
        f"({results['ratios']['added_size_serve_over_multi']} of the full image's "
        f"{added['multi']} MB), start -> first 200 on /health {start['serve']} s\n"
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
