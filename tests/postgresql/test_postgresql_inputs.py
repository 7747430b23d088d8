"""The postgresql role's input checks beyond the argument spec, run on the controller through the role's
own preflight tasks (facts, name resolution and systemd's calendar parser included): a good set passes,
and each bad input fails naming its variable. One ansible-playbook run, one inventory host per case."""

import pytest
from controller_helpers import Outcome, role_preflight_cases

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


# case (its inventory host) -> (its inputs over GOOD, what its failure says)
BAD = {
    "no-password": (
        {"postgresql_users": [{"name": "conduit"}]},
        "postgresql: postgresql_users roles that log in over the network need a password on one line"
        " (from the vault); missing for conduit",
    ),
    "empty-password": (
        {"postgresql_users": [{"name": "conduit", "password": ""}]},
        "missing for conduit",
    ),
    "unknown-owner": (
        {"postgresql_databases": [{"name": "conduit", "owner": "nobody"}]},
        "postgresql: postgresql_databases names must be identifiers, and each owner one of postgresql_users",
    ),
    "unknown-database": (
        {"postgresql_hba_clients": [{"database": "other", "user": "conduit", "address": "localhost"}]},
        "postgresql: postgresql_hba_clients entries need an address",
    ),
    # The message names the host the check ran on: this case's inventory host.
    "unresolvable-client": (
        {"postgresql_hba_clients": [{"database": "conduit", "user": "conduit", "address": "web9.invalid"}]},
        "postgresql: postgresql_hba_clients: web9.invalid does not resolve on unresolvable-client",
    ),
    "keep-0": (
        {"postgresql_backup_keep": 0},
        "postgresql: postgresql_backup_keep must keep at least 1 dump (got 0)",
    ),
    "bad-backup-schedule": (
        {"postgresql_backup_schedule": "daily at three"},
        "postgresql: postgresql_backup_schedule 'daily at three' is not a systemd calendar expression",
    ),
    "bad-restore-check-schedule": (
        {"postgresql_restore_check_schedule": "*-*-* 25:00:00"},
        "postgresql: postgresql_restore_check_schedule '*-*-* 25:00:00' is not a systemd calendar expression",
    ),
    "comma-in-address": (
        {"postgresql_listen_addresses": ["localhost,10.0.0.5"]},
        "postgresql: postgresql_listen_addresses must list at least one address",
    ),
    "port": ({"postgresql_port": 70000}, "postgresql: postgresql_port must be a TCP port (got 70000)"),
    "backup-of-unknown-database": (
        {"postgresql_backup_databases": ["other"]},
        "postgresql: postgresql_backup_databases must name databases of postgresql_databases",
    ),
}


@pytest.fixture(scope="module")
def preflight(tmp_path_factory) -> dict[str, Outcome]:
    """The good set and every bad case, each a host of one run over the good set."""
    cases = {"good": GOOD} | {case: {**GOOD, **inputs} for case, (inputs, _) in BAD.items()}
    return role_preflight_cases("postgresql", tmp_path_factory.mktemp("postgresql-preflight"), cases)


def test_a_good_set_passes(preflight):
    good = preflight["good"]
    assert (good.changed, good.failures) == (0, ()), good.failure


@pytest.mark.parametrize("case", BAD)
def test_a_bad_input_is_refused_by_name(preflight, case):
    outcome = preflight[case]
    assert outcome.failures, f"{case} was accepted"
    assert BAD[case][1] in outcome.failure, outcome.failure
