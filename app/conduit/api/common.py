"""Request parsing shared by the API modules."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import request

from conduit.errors import APIError, blank, invalid

MAX_LIMIT = 1000


def json_body(root: str) -> dict[str, Any]:
    """The object under ``root`` in the JSON body (an empty one if the body or the key is missing).

    Malformed JSON is a 422, never a 500; a body over the size limit is a 413 (raised by Werkzeug).
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("body", "is not valid JSON") from None
    if not isinstance(payload, dict):
        raise invalid("body", "must be a JSON object")
    value = payload.get(root)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(root, "must be an object")
    return value


def required_strings(data: dict[str, Any], *fields: str) -> dict[str, str]:
    """The given fields as non-blank strings; 422 "can't be blank" naming every missing one."""
    values: dict[str, str] = {}
    missing = []
    for field in fields:
        value = data.get(field)
        if value is not None and not isinstance(value, str):
            raise invalid(field, "must be a string")
        if value is None or not value.strip():
            missing.append(field)
        else:
            values[field] = value
    if missing:
        raise blank(*missing)
    return values


def optional_string(data: dict[str, Any], field: str) -> str | None:
    """A string field that may be absent; an explicit null or empty string is "can't be blank"."""
    value = data[field]
    if value is not None and not isinstance(value, str):
        raise invalid(field, "must be a string")
    if value is None or not value.strip():
        raise blank(field)
    return value


def nullable_string(data: dict[str, Any], field: str) -> str | None:
    """A string field where null and "" both mean "no value" (``bio``, ``image``)."""
    value = data[field]
    if value is not None and not isinstance(value, str):
        raise invalid(field, "must be a string")
    return value or None


def tag_list(value: Any) -> list[str]:
    """A ``tagList``: an array of strings, trimmed, without empties or duplicates."""
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise invalid("tagList", "must be an array of strings")
    return sorted({tag.strip() for tag in value if tag.strip()})


def _int_arg(name: str, default: int, minimum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, "must be an integer") from None
    if value < minimum:
        raise invalid(name, f"must be greater than or equal to {minimum}")
    if value > MAX_LIMIT and name == "limit":
        raise invalid(name, f"must be less than or equal to {MAX_LIMIT}")
    return value


def pagination() -> tuple[int, int]:
    """``limit`` (default 20, 1..1000) and ``offset`` (default 0) from the query string."""
    return _int_arg("limit", 20, 1), _int_arg("offset", 0, 0)


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: ``2024-01-31T12:34:56.789Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def ensure(condition: bool, error: APIError) -> None:
    if not condition:
        raise error
