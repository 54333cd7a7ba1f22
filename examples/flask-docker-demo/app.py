"""The lab's hands-on demo: the smallest Flask service worth putting in a container."""

from __future__ import annotations

import os

from flask import Flask


def create_app() -> Flask:
    """Build the app: a greeting on ``/`` and the liveness contract on ``/health``."""
    app = Flask(__name__)

    @app.get("/")
    def index() -> dict[str, str]:
        return {"message": "Hello from a Docker container!"}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "healthy"}

    return app


if __name__ == "__main__":
    # Local runs only (`python app.py`); the container runs gunicorn instead.
    create_app().run(host="127.0.0.1", port=int(os.environ.get("PORT", "8080")))
