# Copyright: lookout maintainers
# MIT License
"""bcrypt hashes for exporter-toolkit web configurations (Prometheus, Alertmanager, exporters).

Each hash gets a random salt: a stolen file gives nothing but bcrypt to guess against. To keep re-runs
idempotent, the hash already on the host is handed in and kept while the password still matches it and its
cost is the one asked for; otherwise a new hash with a new random salt is made. A hash whose salt is the
one earlier releases derived from the password (HMAC-SHA256 of the password, the host, the file and the
user) is replaced too: that salt let a guess be checked with one HMAC instead of a bcrypt. Hashing runs on
the controller and needs the Python package `bcrypt`.
"""

import base64
import hashlib
import hmac

from ansible.errors import AnsibleFilterError

# bcrypt's own base64 alphabet, in the order of the standard one.
_STANDARD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_BCRYPT = bytes.maketrans(_STANDARD, _BCRYPT)
# bcrypt reads at most 72 bytes of a password; longer ones are refused rather than silently cut.
MAX_PASSWORD_BYTES = 72
# $2b$, two digits of cost, $, 22 characters of salt and 31 of hash.
_HASH_LENGTH = 60


def legacy_salt(password: bytes, seed: str, cost: int) -> bytes:
    """The salt earlier releases derived from the password and the seed (host:file:user): only to
    recognise such a hash on a host, never to make one."""
    digest = hmac.new(password, b"lookout-web-config\0" + seed.encode(), hashlib.sha256).digest()
    encoded = base64.b64encode(digest[:16]).rstrip(b"=").translate(_TO_BCRYPT)
    return b"$2b$%02d$" % cost + encoded


def _reusable(bcrypt, secret: bytes, existing: str, cost: int, legacy_seed: str) -> bool:
    """Whether the host's hash can stay: a bcrypt hash of this password, of this cost, with a random salt."""
    raw = existing.encode()
    if len(raw) != _HASH_LENGTH or not raw.startswith((b"$2b$", b"$2a$", b"$2y$")) or raw[6:7] != b"$":
        return False
    if raw[4:6] != b"%02d" % cost:
        return False
    if legacy_seed and raw[7:29] == legacy_salt(secret, legacy_seed, cost)[7:]:
        return False
    try:
        return bcrypt.checkpw(secret, raw)
    except ValueError:  # not a hash bcrypt can read
        return False


def web_config_bcrypt(password, existing="", cost=10, legacy_seed=""):
    """bcrypt hash of `password`: `existing` (the host's) while it still fits, else one with a random salt.

    `legacy_seed` is the host:file:user seed of the derived salts of earlier releases, whose hashes are
    replaced.
    """
    try:
        import bcrypt
    except ImportError as error:
        raise AnsibleFilterError(
            "web_config_bcrypt needs the Python package bcrypt on the controller (requirements-dev.txt)"
        ) from error
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("web_config_bcrypt: the password must be a non-empty string")
    secret = password.encode()
    if len(secret) > MAX_PASSWORD_BYTES:
        raise AnsibleFilterError(
            f"web_config_bcrypt: bcrypt uses at most {MAX_PASSWORD_BYTES} bytes of a password"
        )
    cost = int(cost)
    if not 4 <= cost <= 31:
        raise AnsibleFilterError("web_config_bcrypt: the bcrypt cost must be between 4 and 31")
    if isinstance(existing, str) and existing and _reusable(bcrypt, secret, existing, cost, str(legacy_seed)):
        return existing
    return bcrypt.hashpw(secret, bcrypt.gensalt(rounds=cost, prefix=b"2b")).decode()


def web_config_users(content):
    """The `basic_auth_users` of a web configuration file's text (empty when it has none or is no YAML)."""
    import yaml

    try:
        parsed = yaml.safe_load(content or "")
    except yaml.YAMLError:
        return {}
    users = parsed.get("basic_auth_users") if isinstance(parsed, dict) else None
    if not isinstance(users, dict):
        return {}
    return {str(user): hashed for user, hashed in users.items() if isinstance(hashed, str)}


class FilterModule:
    def filters(self):
        return {"web_config_bcrypt": web_config_bcrypt, "web_config_users": web_config_users}
