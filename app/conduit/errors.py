"""API errors: every failure leaves as ``{"errors": {"<field>": ["<message>"]}}``."""

from __future__ import annotations

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


class APIError(Exception):
    """An error with an HTTP status and the ``errors`` mapping the client sees."""

    def __init__(self, status: int, errors: dict[str, list[str]], headers: dict[str, str] | None = None):
        super().__init__(status, errors)
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def blank(*fields: str) -> APIError:
    return APIError(422, {field: ["can't be blank"] for field in fields})


def invalid(field: str, message: str) -> APIError:
    return APIError(422, {field: [message]})


def not_found(resource: str) -> APIError:
    return APIError(404, {resource: ["not found"]})


def forbidden(resource: str) -> APIError:
    return APIError(403, {resource: ["forbidden"]})


def taken(*fields: str) -> APIError:
    return APIError(409, {field: ["has already been taken"] for field in fields})


def unauthorized() -> APIError:
    return APIError(401, {"token": ["is missing"]})


def _response(status: int, errors: dict[str, list[str]]):
    return jsonify(errors=errors), status


# Messages for HTTP errors raised by Flask/Werkzeug themselves (routing, body size, ...).
HTTP_ERRORS = {
    400: ("request", "is invalid"),
    404: ("path", "not found"),
    405: ("method", "not allowed"),
}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def handle_api_error(error: APIError):
        response, status = _response(error.status, error.errors)
        response.headers.update(error.headers)
        return response, status

    @app.errorhandler(RequestEntityTooLarge)
    def handle_too_large(_error: RequestEntityTooLarge):
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return _response(413, {"body": [f"is too large (limit {limit} bytes)"]})

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        status = error.code or 500
        field, message = HTTP_ERRORS.get(status, ("request", (error.name or "error").lower()))
        response, status = _response(status, {field: [message]})
        if status == 405 and error.response is None:
            allowed = getattr(error, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response, status

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        current_app.logger.exception("unhandled error: %s", error)
        return _response(500, {"server": ["internal error"]})
