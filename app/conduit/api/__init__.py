"""The RealWorld API under /api."""

from __future__ import annotations

from flask import Blueprint

from conduit.api import articles, profiles, users

api = Blueprint("api", __name__, url_prefix="/api")
for module in (users, profiles, articles):
    api.register_blueprint(module.bp)
