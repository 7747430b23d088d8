"""Configuration, read only from environment variables.

Every setting the app understands is listed here and documented in ``app/README.md``.
``load_config`` validates them once; in production mode a missing or placeholder ``SECRET_KEY``
is an error, so neither the app nor ``conduit check-config`` starts with one.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("production", "development", "testing")
DEFAULT_ENV = "production"
MIN_SECRET_LENGTH = 32
DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024
DEFAULT_TOKEN_TTL = 30 * 24 * 3600
# Password hashing (werkzeug's method strings): scrypt with werkzeug's cost unless CONDUIT_PASSWORD_HASH says
# otherwise; the test suite registers hundreds of users and uses a cheap one (never for real passwords).
DEFAULT_PASSWORD_HASH = "scrypt:32768:8:1"
TESTING_PASSWORD_HASH = "pbkdf2:sha256:1000"
PASSWORD_HASH_PATTERN = re.compile(
    r"^(scrypt(:[0-9]+(:[0-9]+(:[0-9]+)?)?)?|pbkdf2(:sha(256|512)(:[0-9]+)?)?)$"
)
# Login throttle: failed logins allowed per account and per client address in one window (seconds).
DEFAULT_LOGIN_ACCOUNT_LIMIT = 5
DEFAULT_LOGIN_ADDRESS_LIMIT = 50
DEFAULT_LOGIN_WINDOW = 900
# Proxies whose X-Forwarded-For names the client (gunicorn reads the same variable for X-Forwarded-Proto).
DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1"
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
    login_account_limit: int = DEFAULT_LOGIN_ACCOUNT_LIMIT
    login_address_limit: int = DEFAULT_LOGIN_ADDRESS_LIMIT
    login_window: int = DEFAULT_LOGIN_WINDOW
    # None: every peer is trusted ("*"); otherwise the networks of the trusted proxies.
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = (
        ipaddress.ip_network(DEFAULT_FORWARDED_ALLOW_IPS),
    )

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
            "CONDUIT_PASSWORD_HASH": self.password_hash_method,
            "CONDUIT_LOGIN_ACCOUNT_LIMIT": str(self.login_account_limit),
            "CONDUIT_LOGIN_ADDRESS_LIMIT": str(self.login_address_limit),
            "CONDUIT_LOGIN_WINDOW": str(self.login_window),
            "CONDUIT_FORWARDED_ALLOW_IPS": (
                "*" if self.trusted_proxies is None else ",".join(map(str, self.trusted_proxies))
            ),
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


def _password_hash(environ: Mapping[str, str], env: str) -> str:
    raw = environ.get("CONDUIT_PASSWORD_HASH", "").strip()
    if not raw:
        return TESTING_PASSWORD_HASH if env == "testing" else DEFAULT_PASSWORD_HASH
    if not PASSWORD_HASH_PATTERN.match(raw):
        raise ConfigError(
            f"CONDUIT_PASSWORD_HASH={raw!r} is not a password hashing method "
            "(scrypt[:N[:r[:p]]] or pbkdf2[:sha256|sha512[:iterations]])"
        )
    parts = raw.split(":")
    if parts[0] == "scrypt" and len(parts) > 1:
        n = int(parts[1])
        if n < 2 or n & (n - 1) or any(int(value) < 1 for value in parts[2:]):
            raise ConfigError(
                f"CONDUIT_PASSWORD_HASH={raw!r}: scrypt's N must be a power of 2, r and p positive"
            )
    if parts[0] == "pbkdf2" and len(parts) > 2 and int(parts[2]) < 1:
        raise ConfigError(f"CONDUIT_PASSWORD_HASH={raw!r}: the iterations must be positive")
    return raw


def _trusted_proxies(
    environ: Mapping[str, str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    """CONDUIT_FORWARDED_ALLOW_IPS: addresses or networks, comma- or space-separated; "*" trusts all."""
    raw = environ.get("CONDUIT_FORWARDED_ALLOW_IPS", DEFAULT_FORWARDED_ALLOW_IPS)
    items = [item for item in re.split(r"[,\s]+", raw) if item]
    if "*" in items:
        return None
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"CONDUIT_FORWARDED_ALLOW_IPS: {item!r} is not an IP address or network"
            ) from None
    return tuple(networks)


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
        password_hash_method=_password_hash(environ, env),
        login_account_limit=_positive_int(
            environ, "CONDUIT_LOGIN_ACCOUNT_LIMIT", DEFAULT_LOGIN_ACCOUNT_LIMIT
        ),
        login_address_limit=_positive_int(
            environ, "CONDUIT_LOGIN_ADDRESS_LIMIT", DEFAULT_LOGIN_ADDRESS_LIMIT
        ),
        login_window=_positive_int(environ, "CONDUIT_LOGIN_WINDOW", DEFAULT_LOGIN_WINDOW),
        trusted_proxies=_trusted_proxies(environ),
    )
