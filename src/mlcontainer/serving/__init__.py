"""Serve a saved model over HTTP: Flask app factory, routes per protocol, metrics, gunicorn.

``create_app`` is imported lazily: the gunicorn launcher must set up prometheus-client's
multiprocess mode before anything imports prometheus-client.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from mlcontainer.serving.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
