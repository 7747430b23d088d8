"""Configuration, read only from environment variables.

Every setting the app understands is listed here and documented in ``app/README.md``.
``load_config`` validates them once; in production mode a missing or placeholder ``SECRET_KEY``
is an error, so neither the app nor ``conduit check-config`` starts with one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("production", "development", "testing")
DEFAULT_ENV = "production"
MIN_SECRET_LENGTH = 32
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024
DEFAULT_TOKEN_TTL = 30 * 24 * 3600
DB_FILENAME = "conduit.db"
# A key that anyone can read in this repository is no secret; used outside production only.
DEVELOPMENT_SECRET_KEY = "conduit-development-key-not-for-production-use"
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change_me",
        "please-change-me",
        "secret",
        "secret-key",
        "secret_key",
        "dev",
        "development",
        "test",
        "testing",
        "insecure",
        DEVELOPMENT_SECRET_KEY,
    }
)
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FALSE_VALUES = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """The environment does not describe a configuration the app can run with."""


@dataclass(frozen=True)
class Config:
    env: str
    secret_key: str
    database_url: str
    metrics_enabled: bool
    multiproc_dir: str | None
    max_content_length: int
    token_ttl: int
    password_hash_method: str

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def describe(self) -> dict[str, str]:
        """The settings in a form safe to print (no secret, no database password)."""
        return {
            "CONDUIT_ENV": self.env,
            "SECRET_KEY": f"set ({len(self.secret_key)} characters)",
            "DATABASE_URL": mask_url(self.database_url),
            "CONDUIT_METRICS": "on" if self.metrics_enabled else "off",
            "PROMETHEUS_MULTIPROC_DIR": self.multiproc_dir or "(unset: single-process metrics)",
            "CONDUIT_MAX_CONTENT_LENGTH": str(self.max_content_length),
            "CONDUIT_TOKEN_TTL": str(self.token_ttl),
        }


def mask_url(url: str) -> str:
    """Hide the password of a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported as is: it holds no parsable password either
        return url


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in TRUE_VALUES:
        return True
    if raw in FALSE_VALUES:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be a positive integer")
    return value


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """``CONDUIT_DATA_DIR``, else systemd's ``STATE_DIRECTORY``, else the working directory."""
    raw = environ.get("CONDUIT_DATA_DIR", "").strip()
    if not raw:
        # systemd's StateDirectory= may list several directories, separated by colons.
        raw = environ.get("STATE_DIRECTORY", "").split(":")[0].strip()
    return Path(raw or ".").expanduser().resolve()


def normalise_database_url(url: str) -> str:
    """Route PostgreSQL URLs to the psycopg 3 driver (``postgres://`` as some hosts spell it, too)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _database_url(environ: Mapping[str, str]) -> str:
    raw = environ.get("DATABASE_URL", "").strip()
    if raw:
        return normalise_database_url(raw)
    return f"sqlite:///{default_data_dir(environ) / DB_FILENAME}"


def _multiproc_dir(environ: Mapping[str, str], metrics_enabled: bool) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, if set: it must name an existing directory.

    prometheus_client takes the variable as is: set but empty, it would scatter metric files into the
    working directory; pointing nowhere, every request would fail when counting.
    """
    if "PROMETHEUS_MULTIPROC_DIR" not in environ:
        return None
    raw = environ["PROMETHEUS_MULTIPROC_DIR"]
    if metrics_enabled and not raw.strip():
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR is set but empty: unset it or name a directory")
    if metrics_enabled and not Path(raw).is_dir():
        raise ConfigError(f"PROMETHEUS_MULTIPROC_DIR={raw!r} is not a directory")
    return raw


def _secret_key(environ: Mapping[str, str], env: str) -> str:
    key = environ.get("SECRET_KEY", "")
    if env != "production":
        return key or DEVELOPMENT_SECRET_KEY
    if not key.strip():
        raise ConfigError(
            "SECRET_KEY is not set: refusing to start in production mode. "
            f"Set SECRET_KEY to a random string of at least {MIN_SECRET_LENGTH} characters "
            "(e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
            "or CONDUIT_ENV=development for local use."
        )
    if key.strip().lower() in PLACEHOLDER_SECRETS:
        raise ConfigError("SECRET_KEY is a placeholder value: refusing to start in production mode.")
    if len(key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"SECRET_KEY is {len(key)} characters long; production mode needs at least {MIN_SECRET_LENGTH}."
        )
    return key


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from ``environ`` (``os.environ`` by default); raise ConfigError if invalid."""
    environ = os.environ if environ is None else environ
    env = environ.get("CONDUIT_ENV", "").strip().lower() or DEFAULT_ENV
    if env not in ENVIRONMENTS:
        raise ConfigError(f"CONDUIT_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    metrics_enabled = _flag(environ, "CONDUIT_METRICS", default=True)
    return Config(
        env=env,
        secret_key=_secret_key(environ, env),
        database_url=_database_url(environ),
        metrics_enabled=metrics_enabled,
        multiproc_dir=_multiproc_dir(environ, metrics_enabled),
        max_content_length=_positive_int(environ, "CONDUIT_MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH),
        token_ttl=_positive_int(environ, "CONDUIT_TOKEN_TTL", DEFAULT_TOKEN_TTL),
        # Hashing is deliberately slow; the test suite registers hundreds of users and uses a cheap one.
        password_hash_method="pbkdf2:sha256:1000" if env == "testing" else "scrypt",
    )
