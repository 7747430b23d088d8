"""The postgresql role's input checks beyond the argument spec, run on the controller through the role's
own preflight tasks (facts, name resolution and systemd's calendar parser included): a good set passes,
and each bad input fails naming its variable."""

import subprocess
from pathlib import Path

import pytest
from controller_helpers import role_preflight

GOOD = {
    "postgresql_users": [
        {"name": "conduit", "password": "a-long-enough-password"},
        {"name": "prometheus", "groups": ["pg_monitor"]},
    ],
    "postgresql_peer_users": ["prometheus"],
    "postgresql_databases": [{"name": "conduit", "owner": "conduit"}],
    "postgresql_hba_clients": [
        {"database": "conduit", "user": "conduit", "address": "localhost"},
        {"database": "conduit", "user": "conduit", "address": "192.0.2.11"},
    ],
    "postgresql_version": "15",
}


def _preflight(tmp_path: Path, **inputs) -> subprocess.CompletedProcess:
    return role_preflight("postgresql", tmp_path, **{**GOOD, **inputs})


def test_a_good_set_passes(tmp_path):
    run = _preflight(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        (
            {"postgresql_users": [{"name": "conduit"}]},
            "postgresql: postgresql_users roles that log in over the network need a password on one line"
            " (from the vault); missing for conduit",
        ),
        (
            {"postgresql_users": [{"name": "conduit", "password": ""}]},
            "missing for conduit",
        ),
        (
            {"postgresql_databases": [{"name": "conduit", "owner": "nobody"}]},
            "postgresql: postgresql_databases names must be identifiers, and each owner one of"
            " postgresql_users",
        ),
        (
            {"postgresql_hba_clients": [{"database": "other", "user": "conduit", "address": "localhost"}]},
            "postgresql: postgresql_hba_clients entries need an address",
        ),
        (
            {
                "postgresql_hba_clients": [
                    {"database": "conduit", "user": "conduit", "address": "web9.invalid"},
                ]
            },
            "postgresql: postgresql_hba_clients: web9.invalid does not resolve on localhost",
        ),
        (
            {"postgresql_backup_keep": 0},
            "postgresql: postgresql_backup_keep must keep at least 1 dump (got 0)",
        ),
        (
            {"postgresql_backup_schedule": "daily at three"},
            "postgresql: postgresql_backup_schedule 'daily at three' is not a systemd calendar expression",
        ),
        (
            {"postgresql_restore_check_schedule": "*-*-* 25:00:00"},
            "postgresql: postgresql_restore_check_schedule '*-*-* 25:00:00' is not a systemd calendar"
            " expression",
        ),
        (
            {"postgresql_listen_addresses": ["localhost,10.0.0.5"]},
            "postgresql: postgresql_listen_addresses must list at least one address",
        ),
        ({"postgresql_port": 70000}, "postgresql: postgresql_port must be a TCP port (got 70000)"),
        (
            {"postgresql_backup_databases": ["other"]},
            "postgresql: postgresql_backup_databases must name databases of postgresql_databases",
        ),
    ],
    ids=[
        "no-password",
        "empty-password",
        "unknown-owner",
        "unknown-database",
        "unresolvable-client",
        "keep-0",
        "bad-backup-schedule",
        "bad-restore-check-schedule",
        "comma-in-address",
        "port",
        "backup-of-unknown-database",
    ],
)
def test_a_bad_input_is_refused_by_name(tmp_path, inputs, says):
    run = _preflight(tmp_path, **inputs)
    assert run.returncode != 0
    assert says in " ".join(run.stdout.split()), run.stdout
