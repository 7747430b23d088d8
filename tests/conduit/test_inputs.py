"""The role's input checks that need more than the argument spec, run on the controller through the
role's own preflight tasks: a wheel handed to the role (CI's artifact) must exist and carry the version
being deployed, without one the source tree must hold the app, and the failure names the variable. Every
case is a host of one run (its own directory for the files it hands the role), its outcome read back per
case."""

from pathlib import Path

import pytest
from controller_helpers import Outcome, roles_preflight_cases

VERSIONS = ["1.4.0", "1.4.0.dev7+g0123abcd"]
WRONG_WHEELS = ["missing", "other-version", "not-a-wheel"]
SQLITE_HOSTS = [[], ["web1"]]
DUMP_HALVES = [
    {"conduit_migrate_backup_host": "db1"},
    {"conduit_migrate_backup_unit": "lookout-pg-backup@conduit.service"},
]
WEAK = "pbkdf2:sha256:1000"
BELOW_THE_FLOOR = [
    (WEAK, "PBKDF2-SHA256 needs at least 600000 iterations, it has 1000"),
    ("pbkdf2:sha512:100000", "PBKDF2-SHA512 needs at least 210000 iterations, it has 100000"),
    ("scrypt:16384:8:1", "scrypt needs N*r*p of at least 262144, it has 131072"),
]
AT_THE_FLOOR = ["scrypt", "scrypt:32768:8:1", "scrypt:16384:8:2", "pbkdf2", "pbkdf2:sha256:600000"]
HASHINGS = [method for method, _ in BELOW_THE_FLOOR] + AT_THE_FLOOR
SSLMODES = ["verify-full", "verify-ca"]


def _wheel(directory: Path, version: str) -> Path:
    wheel = directory / f"conduit-{version}-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    return wheel


def _hashing(method: str) -> str:
    """The case of a hashing method (a host name: no colons)."""
    return f"hash-{HASHINGS.index(method)}"


def _cases(base: Path) -> dict[str, dict]:
    """case -> its inputs; the files a case hands the role are made in base/<case>."""

    def home(case: str) -> Path:
        directory = base / case
        directory.mkdir()
        return directory

    cases = {}
    for number, version in enumerate(VERSIONS):
        wheel = _wheel(home(f"wheel-{number}"), version)
        cases[f"wheel-{number}"] = {"conduit_version": version, "conduit_app_wheel": str(wheel)}
    cases["no-wheel"] = {}
    wrong = {"missing": home("missing") / "conduit-1.4.0-py3-none-any.whl"}
    wrong["other-version"] = _wheel(home("other-version"), "1.3.9")
    wrong["not-a-wheel"] = home("not-a-wheel")
    cases |= {case: {"conduit_app_wheel": str(path)} for case, path in wrong.items()}
    source = home("source-tree")
    cases["source-tree"] = {"conduit_app_source_dir": str(source)}
    wheel = _wheel(home("source-tree-and-wheel"), "1.4.0")
    cases["source-tree-and-wheel"] = {"conduit_app_source_dir": str(source), "conduit_app_wheel": str(wheel)}
    for number, hosts in enumerate(SQLITE_HOSTS):
        cases[f"sqlite-{number}"] = {"conduit_database_engine": "sqlite", "conduit_web_hosts": hosts}
    cases["sqlite-two-hosts"] = {"conduit_database_engine": "sqlite", "conduit_web_hosts": ["web1", "web2"]}
    cases["postgresql-two-hosts"] = {
        "conduit_database_engine": "postgresql",
        "conduit_database_password": "p" * 20,
        "conduit_web_hosts": ["web1", "web2"],
    }
    cases |= {f"dump-{number}": inputs for number, inputs in enumerate(DUMP_HALVES)}
    cases |= {_hashing(method): {"conduit_password_hash": method} for method in HASHINGS}
    cases["demo-test-hashing"] = {
        "conduit_password_hash": WEAK,
        "conduit_weak_password_hash_allowed": True,
        "conduit_env": "testing",
    }
    cases["test-modes"] = {"conduit_env": "testing"}
    cases["two-bad-inputs"] = {"conduit_env": "testing", "conduit_releases_keep": 1}
    cases["extra-env"] = {"conduit_extra_env": {"CONDUIT_PASSWORD_HASH": WEAK, "CONDUIT_LOG_LEVEL": "debug"}}
    for sslmode in SSLMODES:
        cases[f"{sslmode}-without-tls"] = {"conduit_database_sslmode": sslmode, "conduit_tls_enabled": False}
    cases["verify-full-with-tls"] = {"conduit_database_sslmode": "verify-full", "conduit_tls_enabled": True}
    return cases


@pytest.fixture(scope="module")
def preflight(tmp_path_factory) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("conduit-inputs")
    required = {"conduit_version": "1.4.0", "conduit_secret_key": "k" * 40}
    return roles_preflight_cases(
        base, {case: ("conduit", {**required, **inputs}) for case, inputs in _cases(base).items()}
    )


def _passes(outcome: Outcome) -> None:
    assert outcome.failures == (), outcome.failure


@pytest.mark.parametrize("version", VERSIONS)
def test_a_wheel_of_the_version_is_accepted(preflight, version):
    _passes(preflight[f"wheel-{VERSIONS.index(version)}"])


def test_no_wheel_is_accepted(preflight):
    _passes(preflight["no-wheel"])


@pytest.mark.parametrize("wheel", WRONG_WHEELS)
def test_a_wrong_wheel_is_refused_by_name(preflight, wheel):
    outcome = preflight[wheel]
    assert outcome.failures
    message = "conduit: conduit_app_wheel must be empty or a wheel file on the controller named conduit-1.4.0"
    assert message in outcome.failure, outcome.failure


def test_a_source_tree_without_the_app_is_refused_by_name(preflight):
    """The collection carries no app/: without a wheel, the source tree must be given (and hold the app)."""
    outcome = preflight["source-tree"]
    assert outcome.failures
    assert (
        "conduit: conduit_app_source_dir must be the app's source tree on the controller" in outcome.failure
    ), outcome.failure
    _passes(preflight["source-tree-and-wheel"])


@pytest.mark.parametrize("hosts", SQLITE_HOSTS)
def test_sqlite_serves_one_host(preflight, hosts):
    _passes(preflight[f"sqlite-{SQLITE_HOSTS.index(hosts)}"])


def test_sqlite_is_refused_for_several_web_hosts(preflight):
    outcome = preflight["sqlite-two-hosts"]
    assert outcome.failures
    message = "conduit: conduit_database_engine is sqlite, a file per host, but 2 hosts serve"
    assert message in outcome.failure, outcome.failure


def test_postgresql_serves_several_web_hosts(preflight):
    _passes(preflight["postgresql-two-hosts"])


@pytest.mark.parametrize("inputs", DUMP_HALVES)
def test_the_dump_before_migrating_needs_host_and_unit(preflight, inputs):
    outcome = preflight[f"dump-{DUMP_HALVES.index(inputs)}"]
    assert outcome.failures
    message = "conduit: conduit_migrate_backup_unit and conduit_migrate_backup_host are set together"
    assert message in outcome.failure, outcome.failure


@pytest.mark.parametrize(("method", "says"), BELOW_THE_FLOOR)
def test_weak_password_hashing_is_refused_outside_the_demo(preflight, method, says):
    outcome = preflight[_hashing(method)]
    assert outcome.failures
    message = outcome.failure
    assert "conduit: conduit_password_hash is below the production floor outside the demo" in message, message
    assert f'{says} (got "{method}")' in message, message


@pytest.mark.parametrize("method", AT_THE_FLOOR)
def test_password_hashing_at_the_floor_passes(preflight, method):
    _passes(preflight[_hashing(method)])


def test_the_demo_may_use_the_test_hashing(preflight):
    _passes(preflight["demo-test-hashing"])


def test_the_apps_test_modes_are_refused_outside_the_demo(preflight):
    outcome = preflight["test-modes"]
    assert outcome.failures
    assert "conduit: conduit_env must be production outside the demo" in outcome.failure, outcome.failure


def test_every_bad_input_is_named_in_one_message(preflight):
    outcome = preflight["two-bad-inputs"]
    assert "conduit: conduit_releases_keep must be at least 2" in outcome.failure, outcome.failure
    assert "conduit: conduit_env must be production outside the demo" in outcome.failure, outcome.failure


def test_extra_env_cannot_override_the_inputs(preflight):
    outcome = preflight["extra-env"]
    assert outcome.failures
    assert "conduit: conduit_extra_env must not set CONDUIT_PASSWORD_HASH" in outcome.failure, outcome.failure


@pytest.mark.parametrize("sslmode", SSLMODES)
def test_a_verifying_sslmode_without_the_roles_tls_is_refused_by_name(preflight, sslmode):
    outcome = preflight[f"{sslmode}-without-tls"]
    assert outcome.failures
    assert f"conduit: conduit_database_sslmode is {sslmode}" in outcome.failure
    assert "it needs conduit_tls_enabled" in outcome.failure


def test_a_verifying_sslmode_with_the_roles_tls_is_accepted(preflight):
    _passes(preflight["verify-full-with-tls"])
