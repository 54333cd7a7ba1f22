# syntax=docker/dockerfile:1
# mlcontainer: train, evaluate, save and serve a scikit-learn classifier or regressor.
# The lab's commands, as the lab writes them (the build prints the baked model's training):
#   docker build -t ml-app .                      # the full image (the last stage)
#   docker run -p 4000:8080 ml-app                # serves the baked model on $PORT (8080)
#   docker run ml-app train --models svm,knn      # the assignment: train, evaluate, save, predict
#   docker run -v "$PWD/artifacts:/app/artifacts" --user "$(id -u):$(id -g)" ml-app train
#                                                 # ...into ./artifacts (the image's user is
#                                                 # 10001: --user, or chown the folder to it)
#   docker build --target serve -t ml-serve .     # serving only: ONNX model, no scikit-learn
#   docker run -p 4000:8080 ml-serve
# Stages: uv (pinned tool) -> serve-deps (locked serving dependencies) -> deps (+ the training
# extra) -> model (trained at build time from the training modules only) -> onnx-model (its
# ONNX files, checked); deps -> project (the package); app-base (user, env, health check) ->
# serve (serving only) and runtime (the full image: venv, model, package).

# Pinned uv binary: a floating tag would make builds unreproducible.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# Builder: the same base as the runtime, so the venv's interpreter path stays valid there.
FROM python:3.11-slim AS serve-deps
# strip (binutils) for the venv clean-up below: builder stages only, never a runtime image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils=2.40-2 \
    && rm -rf /var/lib/apt/lists/*
# Compile .pyc at install time (imports of scikit-learn cost seconds without them), copy
# out of the cache mount, use the base image's Python and a fixed venv path.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# Everything below works in /app, the path the venv is built for.
WORKDIR /app
# What the venv clean-up removes, and why: see the script (test suites, build-only files,
# onnxruntime's offline tools and C API library, symbol tables; every library still loads).
COPY docker/trim-venv.sh /usr/local/bin/trim-venv
# The lock and the project metadata, copied rather than bind-mounted: Buildah (the builder
# behind Podman's Docker API) leaves bind-mounted files out of the RUN cache key, so a changed
# uv.lock would silently reuse the old dependency layer. A COPY is part of the key everywhere.
COPY pyproject.toml uv.lock /app/
# The serving dependencies only (no extra: flask, gunicorn, onnxruntime, numpy, ...), from the
# lockfile: this layer changes only when uv.lock or pyproject.toml does. Then the clean-up, a
# check that the serving venv holds no scikit-learn, and a new build id (see the runtime stages).
# uv is mounted for the step, never copied: no layer, builder or runtime, holds it.
RUN --mount=type=bind,from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project --no-editable \
    && trim-venv /app/.venv \
    && /app/.venv/bin/python -Ic 'import importlib.util, sys; sys.exit(importlib.util.find_spec("sklearn") is not None)' \
    && cat /proc/sys/kernel/random/uuid > /app/.venv/.build-id

# Full dependencies: the serving ones plus the training extra (scikit-learn, pandas, ...).
FROM serve-deps AS deps
# Only the training extra's packages are new in this layer; the same clean-up as above.
RUN --mount=type=bind,from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --extra train --no-install-project --no-editable \
    && trim-venv /app/.venv \
    && cat /proc/sys/kernel/random/uuid > /app/.venv/.build-id

# Model: trained during the build on the default dataset with the default seed, so that
# `serve` and `predict` work with no volume. Override with --build-arg TRAIN_ARGS="...".
FROM deps AS model
# The build-time entry, the console and the training code only: `python -m mlcontainer.bake`
# runs the job `mlcontainer train` runs (same options and defaults, generated from the same
# declarations) and prints what it prints, without the CLI. These import nothing else of the
# package (checked by tests/test_architecture.py), so a change to the CLI, inference or
# serving code reuses this stage instead of retraining.
COPY src/mlcontainer/__init__.py src/mlcontainer/bake.py src/mlcontainer/console.py \
     /app/train/mlcontainer/
# The core: errors, settings, the schema and the model-folder format.
COPY src/mlcontainer/core /app/train/mlcontainer/core
# Data intake, candidates, selection, metrics, report, ONNX export, the build-time entry.
COPY src/mlcontainer/training /app/train/mlcontainer/training
# Extra `mlcontainer train` options for the baked model (default: every candidate).
ARG TRAIN_ARGS=""
# Deterministic (seed 42); world-readable so any --user can load it.
# hadolint ignore=SC2086
RUN PYTHONPATH=/app/train /app/.venv/bin/python -m mlcontainer.bake \
        --output /app/artifacts \
        $TRAIN_ARGS \
    && chmod -R a+rX /app/artifacts

# The ONNX model for the serving-only image: the build stops here, saying why, when the
# selected model has no verified model.onnx (it would need scikit-learn to serve).
FROM model AS onnx-model
# model.json + model.onnx + the page's report and plot, each checked against the manifest;
# no model.skops (the ONNX runtime does not read it, and the serving-only image could not
# load it). The artifact format's own module lists the files, or says why it cannot.
RUN PYTHONPATH=/app/train /app/.venv/bin/python -m mlcontainer.training.export.serving_copy \
        /app/artifacts /serve-model \
    && chmod -R a+rX /serve-model

# Project: the package itself, installed as a wheel (non-editable) on top of the dependencies.
FROM deps AS project
# A failing `tar` in a pipe must fail the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The readme is part of the package's metadata.
COPY README.md /app/
# Source last: a code change invalidates only the layers from here on.
COPY src /app/src
# Install the project into the venv with its bytecode (only the package's: the dependencies'
# is compiled already), check that it imports in isolated mode, then gather exactly its files
# for the runtime images (the check runs here, not as a RUN there: one layer less to commit).
# (`env -u`: uv refuses --no-compile-bytecode while UV_COMPILE_BYTECODE is set.)
RUN --mount=type=bind,from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv \
    env -u UV_COMPILE_BYTECODE uv sync --locked --no-dev --extra train --no-editable \
        --no-compile-bytecode \
    && .venv/bin/python -m compileall -q .venv/lib/python3.11/site-packages/mlcontainer \
    && .venv/bin/python -Ic 'import mlcontainer.cli' \
    && mkdir /out \
    && tar -cf - .venv/bin/mlcontainer .venv/lib/python3.11/site-packages/mlcontainer \
        .venv/lib/python3.11/site-packages/mlcontainer-*.dist-info | tar -C /out -xf -

# What both runtime images share: the slim base, the unprivileged user, the environment,
# the port, the health check and the entrypoint. No uv, no compiler, no cache.
FROM python:3.11-slim AS app-base
# OCI metadata: what this is, which version, where its source lives.
LABEL org.opencontainers.image.title="mlcontainer" \
      org.opencontainers.image.description="Train, evaluate, save and serve a scikit-learn classifier or regressor" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.source="https://github.com/mlcontainer/mlcontainer" \
      org.opencontainers.image.licenses="MIT"
# An unprivileged user with a fixed uid, so mounted folders can be prepared for it.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin app
# The venv first on PATH; listen on every interface inside the container (the port stays
# PORT, default 8080); caches in /tmp, writable for any user and stateless for Cloud Run
# (XDG_CACHE_HOME: onnxruntime keeps its telemetry id there, and warns on stderr when the
# read-only home refuses it; MPLCONFIGDIR: matplotlib's font cache, the same).
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLCONTAINER_HOST=0.0.0.0 \
    MLCONTAINER_CACHE_DIR=/tmp/mlcontainer \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/matplotlib
# Relative paths (the default `artifacts` model folder) resolve under /app.
WORKDIR /app
# The default PORT; Cloud Run and `-e PORT=...` change it.
EXPOSE 8080
# Health from inside the container with the venv's Python (the image has no curl);
# the port comes from the same settings the server reads.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; from mlcontainer.core.config import Settings; urllib.request.urlopen(f'http://127.0.0.1:{Settings.from_env().port}/health', timeout=4); sys.exit(0)"]
# `docker run IMAGE <command>` runs `mlcontainer <command>`.
ENTRYPOINT ["mlcontainer"]

# Serving only: the serving venv (onnxruntime; no scikit-learn, scipy or pandas),
# the package and the ONNX model.
FROM app-base AS serve
# What this image is, next to the full one.
LABEL org.opencontainers.image.title="mlcontainer-serve" \
      org.opencontainers.image.description="Serve a scikit-learn model compiled to ONNX, without scikit-learn"
# Always the ONNX runtime: a mounted model it cannot serve fails at start, not per request.
ENV MLCONTAINER_RUNTIME=onnx
# The serving dependencies, copied as the full image's are (see there).
COPY --from=serve-deps /app/.venv/.build-id /app/.venv/.build-id
RUN --mount=type=bind,from=serve-deps,source=/app/.venv,target=/mnt/venv \
    cp -a /mnt/venv/. /app/.venv/
# The ONNX model, read-only for the app user.
COPY --from=onnx-model /serve-model /app/artifacts
# Mount a folder here to serve another model (it needs a verified model.onnx).
VOLUME ["/app/artifacts"]
# Every container runs unprivileged; numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# `docker run ml-serve` serves; `docker run -i ml-serve predict --input -` predicts from stdin.
CMD ["serve"]
# The package last (pure Python: the same files whatever the extras): the only layer a change
# to the CLI, serving or prediction code rebuilds.
COPY --from=project /out/ /app/

# Runtime (the full image, the default target): the full venv, the model and the package.
FROM app-base AS runtime
# Dependencies: the same layer for every code change, as long as uv.lock does not change.
# Not `COPY --from=deps /app/.venv`: Buildah hashes the whole 330 MB source on every build to
# look that step up in its cache (6-9 s here, most of a code-only rebuild). The venv's build
# id, new whenever the dependency step really runs, is the cache key instead: it is copied
# first (a few bytes to hash), so the copy below reruns exactly when the venv was rebuilt.
# (A bind mount's files are not part of a RUN's cache key under Buildah; the id's layer is.)
COPY --from=deps /app/.venv/.build-id /app/.venv/.build-id
RUN --mount=type=bind,from=deps,source=/app/.venv,target=/mnt/venv \
    cp -a /mnt/venv/. /app/.venv/
# The baked model, owned by the app user so that `train` can replace it in place; rebuilt only
# when the training code (or TRAIN_ARGS) changes.
COPY --from=model --chown=app:app /app/artifacts /app/artifacts
# Artifacts are data, not image content: mount a folder here to keep or supply a model.
VOLUME ["/app/artifacts"]
# Every container runs unprivileged; numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# Plain `docker run -p 4000:8080 ml-app` serves the baked model on $PORT (default 8080), as the
# lab and Cloud Run expect; `docker run ml-app train ...` trains.
CMD ["serve"]
# The package last: the only layer a change to the CLI, serving or prediction code rebuilds.
COPY --from=project /out/ /app/
