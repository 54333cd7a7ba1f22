"""Serving: the HTTP edge over ``inference`` (native, MLflow and V2 protocols, metrics, page).

``app.create_app`` builds the Flask app; ``server.serve`` runs it under gunicorn. Nothing is
imported here: the gunicorn launcher must set up prometheus-client's multiprocess mode before
anything imports prometheus-client. Imports ``inference`` and the core; never ``training``.
"""
