"""Application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from conduit import db, errors, health, metrics
from conduit.api import api
from conduit.api.users import dummy_hash
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
        CONDUIT_LOGIN_ACCOUNT_LIMIT=config.login_account_limit,
        CONDUIT_LOGIN_ADDRESS_LIMIT=config.login_address_limit,
        CONDUIT_LOGIN_WINDOW=config.login_window,
        CONDUIT_TRUSTED_PROXIES=config.trusted_proxies,
        CONDUIT_DATABASE_URL=config.database_url,
        TESTING=config.env == "testing",
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    if overrides:
        app.config.update(overrides)
    if not app.debug:
        app.logger.setLevel(logging.INFO)

    # Made now, not by the first login for an unknown email, which would take longer than the next ones.
    with app.app_context():
        dummy_hash()

    db.init_app(app, config.database_url)
    errors.register_error_handlers(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api)
    if config.metrics_enabled:
        metrics.init_app(app)
    return app
