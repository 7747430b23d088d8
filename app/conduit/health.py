"""/health: 200 when the database answers, 503 (with the reason) when it does not."""

from __future__ import annotations

from flask import Blueprint, current_app

from conduit import __version__, db

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    try:
        db.ping(db.get_engine())
    except Exception as error:
        current_app.logger.warning("health check failed: database unavailable: %s", error)
        detail = str(error).strip().splitlines()
        reason = f"{type(error).__name__}: {detail[0]}" if detail else type(error).__name__
        body = {"status": "unavailable", "version": __version__, "database": "unavailable", "error": reason}
        return body, 503
    return {"status": "ok", "version": __version__, "database": "ok"}
