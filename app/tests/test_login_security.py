"""Logins and tokens under attack: a password change ends the tokens issued before it, failed logins are
throttled per account and per client address (in the database, shared by every worker and host), the
client address is taken from X-Forwarded-For only when a trusted proxy sent it, and an unknown email costs
what a wrong password costs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import jwt
import pytest
from conduit import db
from conduit.models import LoginThrottle, User, utcnow
from conduit_testing import PASSWORD, Api, make_app
from sqlalchemy import select, update

WRONG = "not-the-password"
# The equal-cost test's hashing: a method other than the suite's default, so that a dummy hash made with a
# fixed method instead of the configured one shows.
EQUAL_COST_HASH = "pbkdf2:sha256:20000"


def _login(client, email: str, password: str, **headers):
    return client.post(
        "/api/users/login", json={"user": {"email": email, "password": password}}, headers=headers
    )


def _change_password(api: Api, token: str, password: str) -> str:
    response = api.put("/api/user", {"user": {"password": password}}, token)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["user"]["token"]


# --- Tokens ----------------------------------------------------------------------------------------------


def test_a_password_change_refuses_earlier_tokens_and_accepts_the_new_one(api):
    first = api.register("alice")
    second = _login(api.client, "alice@example.org", PASSWORD).get_json()["user"]["token"]
    assert api.get("/api/user", first).status_code == 200

    new = _change_password(api, first, "a-new-password")
    for old in (first, second):
        response = api.get("/api/user", old)
        assert response.status_code == 401
        assert response.get_json() == {"errors": {"token": ["is missing"]}}
        assert (
            api.post(
                "/api/articles", {"article": {"title": "t", "description": "d", "body": "b"}}, old
            ).status_code
            == 401
        )
    assert api.get("/api/user", new).get_json()["user"]["username"] == "alice"
    fresh = _login(api.client, "alice@example.org", "a-new-password").get_json()["user"]["token"]
    assert api.get("/api/user", fresh).status_code == 200
    assert _login(api.client, "alice@example.org", PASSWORD).status_code == 401


def test_the_same_password_again_also_ends_earlier_tokens(api):
    """Setting a password stores a new hash (a new salt), so "change it back" cannot revive a stolen token."""
    first = api.register("bob")
    new = _change_password(api, first, PASSWORD)
    assert api.get("/api/user", first).status_code == 401
    assert api.get("/api/user", new).status_code == 200


def test_other_profile_changes_keep_tokens(api):
    token = api.register("carol")
    assert api.put("/api/user", {"user": {"bio": "hello"}}, token).status_code == 200
    assert api.get("/api/user", token).status_code == 200


def test_a_token_bound_to_another_password_hash_is_refused(app, api):
    """The fingerprint is checked, not only present: a token forged with a wrong one is refused."""
    token = api.register("dave")
    claims = jwt.decode(token, app.config["SECRET_KEY"], algorithms=["HS256"])
    claims["pwd"] = "A" * 22
    forged = jwt.encode(claims, app.config["SECRET_KEY"], algorithm="HS256")
    assert api.get("/api/user", forged).status_code == 401


def test_tokens_of_the_previous_release_count_until_the_next_update(app, api):
    """A token without the fingerprint (issued before this release) counts, so a deploy logs nobody out,
    until the user's next update, a password change above all."""
    api.register("erin")
    with app.app_context():
        user = db.session().scalar(select(User).where(User.username == "erin"))
        now = int(time.time())
        legacy = {"sub": str(user.id), "username": "erin", "exp": now + 3600}
        fresh = jwt.encode({**legacy, "iat": now + 1}, app.config["SECRET_KEY"], algorithm="HS256")
        stale = jwt.encode({**legacy, "iat": now - 3600}, app.config["SECRET_KEY"], algorithm="HS256")
        no_iat = jwt.encode(legacy, app.config["SECRET_KEY"], algorithm="HS256")
    time.sleep(max(0.0, now + 1 - time.time()) + 0.05)  # a token's iat may not lie in the future
    assert api.get("/api/user", fresh).status_code == 200
    assert api.get("/api/user", stale).status_code == 401
    assert api.get("/api/user", no_iat).status_code == 401
    time.sleep(1.1)  # the next update lands in a later second than the token's iat
    _change_password(api, fresh, "a-new-password")
    assert api.get("/api/user", fresh).status_code == 401


# --- Throttle --------------------------------------------------------------------------------------------


def test_the_sixth_rapid_failed_login_gets_429_with_retry_after(api):
    api.register("frank")
    statuses = [_login(api.client, "frank@example.org", WRONG).status_code for _ in range(5)]
    assert statuses == [401] * 5
    sixth = _login(api.client, "frank@example.org", WRONG)
    assert sixth.status_code == 429
    assert sixth.get_json() == {"errors": {"credentials": ["too many attempts"]}}
    assert 890 <= int(sixth.headers["Retry-After"]) <= 900
    # The right password does not get through either while the account is throttled.
    assert _login(api.client, "frank@example.org", PASSWORD).status_code == 429
    # Another account from the same address is not locked by this one (its own limit is far off).
    api.register("grace")
    assert _login(api.client, "grace@example.org", PASSWORD).status_code == 200


def test_unknown_accounts_are_throttled_alike(api):
    """An unknown email is locked like a known one: the 429 tells no more than the 401 did."""
    statuses = [_login(api.client, "nobody@example.org", WRONG).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_successful_logins_do_not_use_up_the_limit(api):
    api.register("heidi")
    for _ in range(4):
        assert _login(api.client, "heidi@example.org", WRONG).status_code == 401
    for _ in range(10):
        assert _login(api.client, "heidi@example.org", PASSWORD).status_code == 200
    assert _login(api.client, "heidi@example.org", WRONG).status_code == 401
    assert _login(api.client, "heidi@example.org", WRONG).status_code == 429


def test_the_window_expires_and_expired_rows_are_deleted(app, api):
    api.register("ivan")
    for _ in range(6):
        _login(api.client, "ivan@example.org", WRONG)
    assert _login(api.client, "ivan@example.org", PASSWORD).status_code == 429
    with app.app_context():
        session = db.session()
        session.execute(update(LoginThrottle).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert _login(api.client, "ivan@example.org", PASSWORD).status_code == 200
    with app.app_context():
        rows = db.session().scalars(select(LoginThrottle)).all()
        # Only this login's two keys are left, in a fresh window, its attempt given back.
        assert len(rows) == 2
        assert all(row.attempts == 0 and row.expires_at > utcnow() + timedelta(seconds=800) for row in rows)
        assert not any("ivan" in row.key for row in rows)


def test_limits_are_configurable_and_the_address_limit_spans_accounts(database_url):
    app = make_app(
        database_url,
        CONDUIT_LOGIN_ACCOUNT_LIMIT="2",
        CONDUIT_LOGIN_ADDRESS_LIMIT="3",
        CONDUIT_LOGIN_WINDOW="60",
    )
    try:
        client = app.test_client()
        assert [_login(client, "a@example.org", WRONG).status_code for _ in range(3)] == [401, 401, 429]
        # The address has had 3 attempts: a fourth account is refused at once, with the address's wait.
        response = _login(client, "b@example.org", WRONG)
        assert response.status_code == 429
        assert 55 <= int(response.headers["Retry-After"]) <= 60
        # Another client address is not affected (the test client's peer is 127.0.0.1, a trusted proxy).
        assert (
            _login(client, "b@example.org", WRONG, **{"X-Forwarded-For": "198.51.100.7"}).status_code == 401
        )
    finally:
        app.extensions["conduit.engine"].dispose()


def test_the_throttle_holds_across_app_instances(database_url):
    """Two apps on one database stand for two gunicorn workers or two web hosts: the count is shared."""
    apps = [make_app(database_url), make_app(database_url)]
    try:
        clients = [app.test_client() for app in apps]
        statuses = [_login(clients[i % 2], "judy@example.org", WRONG).status_code for i in range(6)]
        assert statuses == [401] * 5 + [429]
    finally:
        for app in apps:
            app.extensions["conduit.engine"].dispose()


def test_concurrent_failed_logins_never_get_more_than_the_limit(database_url):
    """Each attempt is counted by one atomic upsert: 20 at once, exactly 5 are checked, 15 refused."""
    apps = [make_app(database_url), make_app(database_url)]
    try:

        def one(i: int) -> int:
            return _login(apps[i % 2].test_client(), "kim@example.org", WRONG).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = sorted(pool.map(one, range(20)))
        assert statuses == [401] * 5 + [429] * 15
    finally:
        for app in apps:
            app.extensions["conduit.engine"].dispose()


# --- The client address ----------------------------------------------------------------------------------


def _address_app(database_url, proxies: str):
    return make_app(
        database_url,
        CONDUIT_FORWARDED_ALLOW_IPS=proxies,
        CONDUIT_LOGIN_ACCOUNT_LIMIT="100",
        CONDUIT_LOGIN_ADDRESS_LIMIT="2",
    )


def _statuses(client, forwarded: list[str], peer: str) -> list[int]:
    return [
        client.post(
            "/api/users/login",
            json={"user": {"email": f"user{i}@example.org", "password": WRONG}},
            headers={"X-Forwarded-For": value} if value else {},
            environ_base={"REMOTE_ADDR": peer},
        ).status_code
        for i, value in enumerate(forwarded)
    ]


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(database_url):
    app = _address_app(database_url, "192.0.2.10, 2001:db8::/64")
    try:
        client = app.test_client()
        # From the frontend: each forwarded client has its own count.
        assert _statuses(client, ["198.51.100.1"] * 3, "192.0.2.10") == [401, 401, 429]
        assert _statuses(client, ["198.51.100.2"], "192.0.2.10") == [401]
        assert _statuses(client, ["198.51.100.3"], "2001:db8::5") == [401]
        # From anyone else the header is ignored: a client that makes up a new address per request is
        # still counted as itself.
        assert _statuses(client, ["203.0.113.1", "203.0.113.2", "203.0.113.3"], "192.0.2.99") == [
            401,
            401,
            429,
        ]
        # A chain: the client is the last address that is not a trusted proxy, whatever came before it.
        assert _statuses(client, ["10.9.9.9, 198.51.100.1"], "192.0.2.10") == [429]
        assert _statuses(client, ["198.51.100.4, 192.0.2.10"], "192.0.2.10") == [401]
        # A malformed header from the proxy falls back to the proxy's own address.
        assert _statuses(client, ["garbage", "garbage", "garbage"], "192.0.2.10") == [401, 401, 429]
    finally:
        app.extensions["conduit.engine"].dispose()


def test_ipv6_clients_are_counted_per_64(database_url):
    app = _address_app(database_url, "127.0.0.1")
    try:
        client = app.test_client()
        peers = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"]
        assert [_statuses(client, [""], peer)[0] for peer in peers] == [401, 401, 429]
        assert _statuses(client, [""], "2001:db8:1:3::1") == [401]
    finally:
        app.extensions["conduit.engine"].dispose()


# --- Equal cost ------------------------------------------------------------------------------------------


def _login_work(app, client, email: str, monkeypatch) -> tuple[list[str], list[str]]:
    """What one failed login does: the method part of every hash it checks a password against, and the
    shape of every SQL statement it sends (parameters are bound, so the text is the same for any email)."""
    from conduit.api import users
    from sqlalchemy import event

    checked: list[str] = []
    real_check = users.check_password_hash

    def recording_check(stored: str, password: str) -> bool:
        checked.append(stored.split("$", 1)[0])
        return real_check(stored, password)

    statements: list[str] = []

    def record(*args) -> None:  # conn, cursor, statement, parameters, context, executemany
        statements.append(" ".join(args[2].split()))

    engine = app.extensions["conduit.engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(users, "check_password_hash", recording_check)
            assert _login(client, email, WRONG).status_code == 401
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return checked, statements


def test_an_unknown_email_costs_what_a_wrong_password_costs(database_url, monkeypatch):
    """A property of the code path, not a stopwatch: a failed login for an unknown email checks the
    password against exactly one hash of the configured method (the dummy), as a wrong password for a
    known email does against the user's, and sends the same SQL statements in the same order."""
    app = make_app(
        database_url,
        CONDUIT_PASSWORD_HASH=EQUAL_COST_HASH,
        CONDUIT_LOGIN_ACCOUNT_LIMIT="1000",
        CONDUIT_LOGIN_ADDRESS_LIMIT="1000",
    )
    try:
        client = app.test_client()
        Api(client).register("known")
        # The first failed login of each kind may create the throttle rows; compare the steady state.
        _login_work(app, client, "known@example.org", monkeypatch)
        _login_work(app, client, "unknown@example.org", monkeypatch)
        known = _login_work(app, client, "known@example.org", monkeypatch)
        unknown = _login_work(app, client, "unknown@example.org", monkeypatch)
        assert known[0] == [EQUAL_COST_HASH], known[0]
        assert unknown[0] == known[0], (unknown[0], known[0])
        assert any(statement.startswith("SELECT") for statement in known[1]), known[1]
        assert unknown[1] == known[1], (unknown[1], known[1])
    finally:
        app.extensions["conduit.engine"].dispose()


def test_the_dummy_hash_uses_the_configured_method(app):
    from conduit.api.users import dummy_hash

    with app.app_context():
        assert dummy_hash().startswith("pbkdf2:sha256:1000$")


@pytest.mark.parametrize("method", ["scrypt:16384:8:1", "pbkdf2:sha256:600000"])
def test_the_hash_method_comes_from_the_environment(database_url, method):
    from conduit.api.users import dummy_hash

    app = make_app(database_url, CONDUIT_PASSWORD_HASH=method)
    try:
        with app.app_context():
            assert dummy_hash().startswith(method + "$")
    finally:
        app.extensions["conduit.engine"].dispose()
