# Copyright: lookout maintainers
# MIT License
"""bcrypt hashes for exporter-toolkit web configurations (Prometheus, Alertmanager, exporters).

A bcrypt hash carries a random salt, so hashing the same password again gives a different file and a
re-run would always report a change. Here the salt is derived from the password and a seed (the host,
the file and the user) with HMAC-SHA256: the same password on the same host hashes to the same line,
any other password, host, file or user to a different one, and the salt reveals nothing about the
password. Hashing runs on the controller and needs the Python package `bcrypt`.
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


def bcrypt_salt(password: bytes, seed: str, cost: int) -> bytes:
    """A bcrypt salt string ($2b$<cost>$ and 22 characters) derived from the password and the seed."""
    digest = hmac.new(password, b"lookout-web-config\0" + seed.encode(), hashlib.sha256).digest()
    encoded = base64.b64encode(digest[:16]).rstrip(b"=").translate(_TO_BCRYPT)
    return b"$2b$%02d$" % cost + encoded


def web_config_bcrypt(password, seed, cost=10):
    """bcrypt hash of `password` with a salt derived from the password and `seed`."""
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
    return bcrypt.hashpw(secret, bcrypt_salt(secret, str(seed), cost)).decode()


class FilterModule:
    def filters(self):
        return {"web_config_bcrypt": web_config_bcrypt}
