"""Conduit: the RealWorld API backend (Flask, SQLAlchemy, Alembic, Prometheus metrics).

Kept free of heavy imports on purpose: ``conduit.gunicorn_conf`` is imported by the gunicorn master
before ``PROMETHEUS_MULTIPROC_DIR`` is settled, and importing ``prometheus_client`` too early would
pick the single-process value class.
"""

from conduit._version import __version__

__all__ = ["__version__"]
