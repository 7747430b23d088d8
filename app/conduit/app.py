"""Application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from conduit import db, errors, health, metrics
from conduit.api import api
from conduit.config import Config, load_config


def create_app(config: Config | None = None, overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from ``config`` (read from the environment when omitted; may raise ConfigError)."""
    config = config or load_config()
    app = Flask("conduit")
    app.config.update(
        CONDUIT_ENV=config.env,
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_content_length,
        CONDUIT_TOKEN_TTL=config.token_ttl,
        CONDUIT_PASSWORD_HASH_METHOD=config.password_hash_method,
        CONDUIT_DATABASE_URL=config.database_url,
        TESTING=config.env == "testing",
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    if overrides:
        app.config.update(overrides)
    if not app.debug:
        app.logger.setLevel(logging.INFO)

    db.init_app(app, config.database_url)
    errors.register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api)
    if config.metrics_enabled:
        metrics.init_app(app)
    return app
