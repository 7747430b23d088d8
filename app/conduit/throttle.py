"""Login throttle: attempts counted per account and per client address, in the database.

Every worker of every web host shares the counts (PostgreSQL in production, the SQLite file in the demo).
A login first counts itself against both keys in one atomic upsert per key (fixed windows of
``CONDUIT_LOGIN_WINDOW`` seconds, starting at a key's first attempt); when a key is over its limit the
login is refused with 429 and ``Retry-After`` before the password is checked. A successful login takes its
own attempt back, so only failures use up the limit. Rows whose window has ended are deleted by the next
login.

The client address is the TCP peer, unless the peer is one of the trusted proxies
(``CONDUIT_FORWARDED_ALLOW_IPS``: the frontend hosts): then it is the last address in ``X-Forwarded-For``
that is not itself a trusted proxy. IPv6 clients are counted per /64, what one host usually holds.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app, request
from sqlalchemy import Connection, case, delete, update
from sqlalchemy.dialects import postgresql, sqlite

from conduit import db
from conduit.models import LoginThrottle, utcnow

IPV6_PREFIX = 64
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address) -> bool:
    proxies = current_app.config["CONDUIT_TRUSTED_PROXIES"]
    return proxies is None or any(address in network for network in proxies)


def client_address() -> str:
    """The client's address as the front door saw it (see the module's docstring)."""
    peer = _parse(request.remote_addr or "")
    if peer is None:
        return request.remote_addr or "unknown"
    client = peer
    if _trusted(peer):
        for value in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
            hop = _parse(value)
            if hop is None:
                break
            client = hop
            if not _trusted(hop):
                break
    return str(client)


def _address_key(address: str) -> str:
    parsed = _parse(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return f"address:{ipaddress.ip_network(f'{parsed}/{IPV6_PREFIX}', strict=False)}"
    return f"address:{address}"


def _account_key(email: str) -> str:
    # Hashed: the table never holds the addresses people tried to log in with.
    return "account:" + hashlib.sha256(email.encode()).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """One login's place in the throttle: its keys, and the seconds to wait when one is over its limit."""

    keys: tuple[str, ...]
    retry_after: int | None


def _upsert(connection: Connection, key: str, now, window: timedelta) -> tuple[int, object]:
    table = LoginThrottle.__table__
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(key=key, attempts=1, expires_at=now + window)
    expired = table.c.expires_at <= now
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "attempts": case((expired, 1), else_=table.c.attempts + 1),
            "expires_at": case((expired, statement.excluded.expires_at), else_=table.c.expires_at),
        },
    ).returning(table.c.attempts, table.c.expires_at)
    attempts, expires_at = connection.execute(statement).one()
    return attempts, expires_at


def begin(email: str) -> Attempt:
    """Count a login attempt for this account and the client's address; committed at once."""
    config = current_app.config
    now = utcnow()
    window = timedelta(seconds=config["CONDUIT_LOGIN_WINDOW"])
    limits = {
        _account_key(email): config["CONDUIT_LOGIN_ACCOUNT_LIMIT"],
        _address_key(client_address()): config["CONDUIT_LOGIN_ADDRESS_LIMIT"],
    }
    waits = []
    engine = db.get_engine()
    # Its own transaction: rows locked by the purge and by the upserts in one transaction could deadlock
    # two logins on PostgreSQL.
    with engine.begin() as connection:
        connection.execute(delete(LoginThrottle).where(LoginThrottle.expires_at <= now))
    # The keys in one order in every login, each row locked until the commit.
    with engine.begin() as connection:
        for key, limit in limits.items():
            attempts, expires_at = _upsert(connection, key, now, window)
            if attempts > limit:
                waits.append(max(1, math.ceil((expires_at - now).total_seconds())))
    return Attempt(tuple(limits), max(waits) if waits else None)


def succeeded(attempt: Attempt) -> None:
    """A login that passed takes its attempt back from both keys."""
    with db.get_engine().begin() as connection:
        connection.execute(
            update(LoginThrottle)
            .where(
                LoginThrottle.key.in_(attempt.keys),
                LoginThrottle.attempts > 0,
                LoginThrottle.expires_at > utcnow(),
            )
            .values(attempts=LoginThrottle.attempts - 1)
        )
