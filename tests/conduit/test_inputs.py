"""The role's input checks that need more than the argument spec, run on the controller through the
role's own preflight tasks: a wheel handed to the role (CI's artifact) must exist and carry the version
being deployed, without one the source tree must hold the app, and the failure names the variable."""

import subprocess
from pathlib import Path

import pytest
from controller_helpers import role_preflight


def _preflight(tmp_path: Path, **inputs) -> subprocess.CompletedProcess:
    hostvars = {"conduit_version": "1.4.0", "conduit_secret_key": "k" * 40, **inputs}
    return role_preflight("conduit", tmp_path, **hostvars)


def _wheel(tmp_path: Path, version: str) -> Path:
    wheel = tmp_path / f"conduit-{version}-py3-none-any.whl"
    wheel.write_bytes(b"wheel")
    return wheel


@pytest.mark.parametrize("version", ["1.4.0", "1.4.0.dev7+g0123abcd"])
def test_a_wheel_of_the_version_is_accepted(tmp_path, version):
    run = _preflight(tmp_path, conduit_version=version, conduit_app_wheel=str(_wheel(tmp_path, version)))
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_wheel_is_accepted(tmp_path):
    run = _preflight(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "wheel",
    ["missing", "other-version", "not-a-wheel"],
)
def test_a_wrong_wheel_is_refused_by_name(tmp_path, wheel):
    paths = {
        "missing": tmp_path / "conduit-1.4.0-py3-none-any.whl",
        "other-version": _wheel(tmp_path, "1.3.9"),
        "not-a-wheel": tmp_path,
    }
    run = _preflight(tmp_path, conduit_app_wheel=str(paths[wheel]))
    assert run.returncode != 0
    message = "conduit: conduit_app_wheel must be empty or a wheel file on the controller named conduit-1.4.0"
    assert message in run.stdout, run.stdout


def test_a_source_tree_without_the_app_is_refused_by_name(tmp_path):
    """The collection carries no app/: without a wheel, the source tree must be given (and hold the app)."""
    run = _preflight(tmp_path, conduit_app_source_dir=str(tmp_path))
    assert run.returncode != 0
    assert "conduit: conduit_app_source_dir must be the app's source tree on the controller" in run.stdout, (
        run.stdout
    )
    assert (
        _preflight(
            tmp_path, conduit_app_source_dir=str(tmp_path), conduit_app_wheel=str(_wheel(tmp_path, "1.4.0"))
        ).returncode
        == 0
    )


@pytest.mark.parametrize("hosts", [[], ["web1"]])
def test_sqlite_serves_one_host(tmp_path, hosts):
    run = _preflight(tmp_path, conduit_database_engine="sqlite", conduit_web_hosts=hosts)
    assert run.returncode == 0, run.stdout + run.stderr


def test_sqlite_is_refused_for_several_web_hosts(tmp_path):
    run = _preflight(tmp_path, conduit_database_engine="sqlite", conduit_web_hosts=["web1", "web2"])
    assert run.returncode != 0
    message = "conduit: conduit_database_engine is sqlite, a file per host, but 2 hosts serve"
    assert message in run.stdout, run.stdout


def test_postgresql_serves_several_web_hosts(tmp_path):
    run = _preflight(
        tmp_path,
        conduit_database_engine="postgresql",
        conduit_database_password="p" * 20,
        conduit_web_hosts=["web1", "web2"],
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "inputs",
    [
        {"conduit_migrate_backup_host": "db1"},
        {"conduit_migrate_backup_unit": "lookout-pg-backup@conduit.service"},
    ],
)
def test_the_dump_before_migrating_needs_host_and_unit(tmp_path, inputs):
    run = _preflight(tmp_path, **inputs)
    assert run.returncode != 0
    message = "conduit: conduit_migrate_backup_unit and conduit_migrate_backup_host are set together"
    assert message in run.stdout, run.stdout


WEAK = "pbkdf2:sha256:1000"


@pytest.mark.parametrize(
    ("method", "says"),
    [
        (WEAK, "PBKDF2-SHA256 needs at least 600000 iterations, it has 1000"),
        ("pbkdf2:sha512:100000", "PBKDF2-SHA512 needs at least 210000 iterations, it has 100000"),
        ("scrypt:16384:8:1", "scrypt needs N*r*p of at least 262144, it has 131072"),
    ],
)
def test_weak_password_hashing_is_refused_outside_the_demo(tmp_path, method, says):
    run = _preflight(tmp_path, conduit_password_hash=method)
    assert run.returncode != 0
    message = " ".join(run.stdout.split())
    assert "conduit: conduit_password_hash is below the production floor outside the demo" in message, message
    assert f'{says} (got "{method}")' in message, message


@pytest.mark.parametrize(
    "method", ["scrypt", "scrypt:32768:8:1", "scrypt:16384:8:2", "pbkdf2", "pbkdf2:sha256:600000"]
)
def test_password_hashing_at_the_floor_passes(tmp_path, method):
    run = _preflight(tmp_path, conduit_password_hash=method)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_demo_may_use_the_test_hashing(tmp_path):
    run = _preflight(
        tmp_path, conduit_password_hash=WEAK, conduit_weak_password_hash_allowed=True, conduit_env="testing"
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_apps_test_modes_are_refused_outside_the_demo(tmp_path):
    run = _preflight(tmp_path, conduit_env="testing")
    assert run.returncode != 0
    assert "conduit: conduit_env must be production outside the demo" in run.stdout, run.stdout


def test_extra_env_cannot_override_the_inputs(tmp_path):
    run = _preflight(
        tmp_path, conduit_extra_env={"CONDUIT_PASSWORD_HASH": WEAK, "CONDUIT_LOG_LEVEL": "debug"}
    )
    assert run.returncode != 0
    assert "conduit: conduit_extra_env must not set CONDUIT_PASSWORD_HASH" in run.stdout, run.stdout


@pytest.mark.parametrize("sslmode", ["verify-full", "verify-ca"])
def test_a_verifying_sslmode_without_the_roles_tls_is_refused_by_name(tmp_path, sslmode):
    run = _preflight(tmp_path, conduit_database_sslmode=sslmode, conduit_tls_enabled=False)
    assert run.returncode != 0
    assert f"conduit: conduit_database_sslmode is {sslmode}" in run.stdout
    assert "it needs conduit_tls_enabled" in run.stdout


def test_a_verifying_sslmode_with_the_roles_tls_is_accepted(tmp_path):
    run = _preflight(tmp_path, conduit_database_sslmode="verify-full", conduit_tls_enabled=True)
    assert run.returncode == 0, run.stdout + run.stderr
