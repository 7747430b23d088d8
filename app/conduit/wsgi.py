"""WSGI entry point for gunicorn: ``gunicorn -c python:conduit.gunicorn_conf conduit.wsgi:app``."""

from conduit.app import create_app

app = create_app()
