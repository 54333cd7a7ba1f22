# syntax=docker/dockerfile:1
# mlcontainer: train, evaluate, save and serve a scikit-learn classifier.
#   docker build -t ml-app .                      # the full image (the last stage): train + serve
#   docker run --rm -v "$PWD/artifacts:/app/artifacts" ml-app     # train into ./artifacts
#   docker run --rm -p 4000:8080 ml-app serve                       # serve the baked-in model
#   docker build --target serve -t ml-serve .     # serving only: ONNX model, no scikit-learn
#   docker run --rm -p 4000:8080 ml-serve
# Stages: uv (pinned tool) -> serve-deps (locked serving dependencies) -> deps (+ the training
# extra) -> project (the package) -> model (trained at build time) -> onnx-model (its ONNX
# files, checked); app-base (user, env, health check) -> serve (serving only) and runtime
# (the full image: venv, package, model).

# Pinned uv binary: a floating tag would make builds unreproducible.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# Builder: the same base as the runtime, so the venv's interpreter path stays valid there.
FROM python:3.11-slim AS serve-deps
# uv lives only in the builder stages, never in the runtime images.
COPY --from=uv /uv /usr/local/bin/uv
# Compile .pyc at install time (imports of scikit-learn cost seconds without them), copy
# out of the cache mount, use the base image's Python and a fixed venv path.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# Everything below works in /app, the path the venv is built for.
WORKDIR /app
# The lock and the project metadata, copied rather than bind-mounted: Buildah (the builder
# behind Podman's Docker API) leaves bind-mounted files out of the RUN cache key, so a changed
# uv.lock would silently reuse the old dependency layer. A COPY is part of the key everywhere.
COPY pyproject.toml uv.lock /app/
# The serving dependencies only (no extra: flask, gunicorn, onnxruntime, numpy, ...), from the
# lockfile: this layer changes only when uv.lock or pyproject.toml does. Then drop what only
# test runs and C compilers read (the packages' own test suites, headers, Cython and C sources,
# type stubs) and onnxruntime's offline tools (model conversion, quantization, transformer
# optimisation): nothing imports them at run time.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project --no-editable \
    && find /app/.venv/lib/python3.11/site-packages -mindepth 2 -depth -type d -name tests \
        -exec rm -rf {} + \
    && find /app/.venv/lib/python3.11/site-packages -type f \
        \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.c' -o -name '*.cpp' \
        -o -name '*.h' -o -name '*.hpp' \) -delete \
    && rm -rf /app/.venv/lib/python3.11/site-packages/onnxruntime/tools \
        /app/.venv/lib/python3.11/site-packages/onnxruntime/quantization \
        /app/.venv/lib/python3.11/site-packages/onnxruntime/transformers

# Full dependencies: the serving ones plus the training extra (scikit-learn, pandas, ...).
FROM serve-deps AS deps
# Only the training extra's packages are new in this layer; the same clean-up as above.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --extra train --no-install-project --no-editable \
    && find /app/.venv/lib/python3.11/site-packages -mindepth 2 -depth -type d -name tests \
        -exec rm -rf {} + \
    && find /app/.venv/lib/python3.11/site-packages -type f \
        \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.c' -o -name '*.cpp' \
        -o -name '*.h' -o -name '*.hpp' \) -delete

# Project: the package itself, installed as a wheel (non-editable) on top of the dependencies.
FROM deps AS project
# A failing `tar` in a pipe must fail the build.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The readme is part of the package's metadata.
COPY README.md /app/
# Source last: a code change invalidates only the layers from here on.
COPY src /app/src
# Install the project into the venv, then gather exactly its files for the runtime stage.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --extra train --no-editable \
    && mkdir /out \
    && tar -cf - .venv/bin/mlcontainer .venv/lib/python3.11/site-packages/mlcontainer \
        .venv/lib/python3.11/site-packages/mlcontainer-*.dist-info | tar -C /out -xf -

# Model: trained during the build on the default dataset with the default seed, so that
# `serve` and `predict` work with no volume. Override with --build-arg TRAIN_ARGS="...".
FROM project AS model
# Extra `mlcontainer train` options for the baked model (default: every candidate).
ARG TRAIN_ARGS=""
# Deterministic (seed 42); world-readable so any --user can load it.
# hadolint ignore=SC2086
RUN /app/.venv/bin/mlcontainer train --output /app/artifacts $TRAIN_ARGS \
    && chmod -R a+rX /app/artifacts

# The ONNX model for the serving-only image: the build stops here, saying why, when the
# selected model has no verified model.onnx (it would need scikit-learn to serve).
FROM model AS onnx-model
# model.json + model.onnx + the page's report and plot; no model.skops (the ONNX runtime
# does not read it, and the serving-only image could not load it).
RUN /app/.venv/bin/python -Ic 'import json, sys; r = json.load(open("/app/artifacts/model.json")).get("runtime") or {}; sys.exit(0 if r.get("default") == "onnx" else "the selected model has no verified ONNX export, so the serving-only image cannot serve it: " + str(r.get("reason") or "model.json has no runtime section") + " (pick another model with --build-arg TRAIN_ARGS=..., or use the full image)")' \
    && mkdir /serve-model \
    && cp /app/artifacts/model.json /app/artifacts/model.onnx /app/artifacts/metrics.json \
        /app/artifacts/confusion_matrix.png /app/artifacts/report.html /serve-model/ \
    && chmod -R a+rX /serve-model

# What both runtime images share: the slim base, the unprivileged user, the environment,
# the port, the health check and the entrypoint. No uv, no compiler, no cache.
FROM python:3.11-slim AS app-base
# OCI metadata: what this is, which version, where its source lives.
LABEL org.opencontainers.image.title="mlcontainer" \
      org.opencontainers.image.description="Train, evaluate, save and serve a scikit-learn classifier" \
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
# read-only home refuses it).
ENV PATH="/app/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLCONTAINER_HOST=0.0.0.0 \
    MLCONTAINER_CACHE_DIR=/tmp/mlcontainer \
    XDG_CACHE_HOME=/tmp/.cache
# Relative paths (the default `artifacts` model folder) resolve under /app.
WORKDIR /app
# The default PORT; Cloud Run and `-e PORT=...` change it.
EXPOSE 8080
# Health from inside the container with the venv's Python (the image has no curl);
# the port comes from the same settings the server reads.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; from mlcontainer.config import Settings; urllib.request.urlopen(f'http://127.0.0.1:{Settings.from_env().port}/health', timeout=4); sys.exit(0)"]
# `docker run IMAGE <command>` runs `mlcontainer <command>`.
ENTRYPOINT ["mlcontainer"]

# Serving only: the serving venv (onnxruntime; no scikit-learn, scipy, pandas or matplotlib),
# the package and the ONNX model.
FROM app-base AS serve
# What this image is, next to the full one.
LABEL org.opencontainers.image.title="mlcontainer-serve" \
      org.opencontainers.image.description="Serve a scikit-learn classifier compiled to ONNX, without scikit-learn"
# Always the ONNX runtime: a mounted model it cannot serve fails at start, not per request.
ENV MLCONTAINER_RUNTIME=onnx
# The serving dependencies: the same layer for every code change while uv.lock stays.
COPY --from=serve-deps /app/.venv /app/.venv
# The package (pure Python: the same files whatever the extras).
COPY --from=project /out/ /app/
# The ONNX model, read-only for the app user.
COPY --from=onnx-model /serve-model /app/artifacts
# Smoke test: the package imports in isolated mode, and the serving image holds no scikit-learn.
RUN python -Ic 'import importlib.util, sys, mlcontainer; sys.exit(importlib.util.find_spec("sklearn") is not None)'
# Mount a folder here to serve another model (it needs a verified model.onnx).
VOLUME ["/app/artifacts"]
# Every container runs unprivileged; numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# `docker run ml-serve` serves; `docker run -i ml-serve predict --input -` predicts from stdin.
CMD ["serve"]

# Runtime (the full image, the default target): the full venv, the package and the model.
FROM app-base AS runtime
# Dependencies: the same layer for every code change, as long as uv.lock does not change.
COPY --from=deps /app/.venv /app/.venv
# The package: the only layer (with the model) that a code change rebuilds.
COPY --from=project /out/ /app/
# Smoke test: the image fails to build if the package does not import in isolated mode.
RUN python -Ic 'import mlcontainer'
# The baked model, owned by the app user so that `train` can replace it in place.
COPY --from=model --chown=app:app /app/artifacts /app/artifacts
# Artifacts are data, not image content: mount a folder here to keep or supply a model.
VOLUME ["/app/artifacts"]
# Every container runs unprivileged; numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# Plain `docker run ml-app` trains.
CMD ["train"]
