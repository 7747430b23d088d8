"""Every lookout service's unit comes from common's template (roles/common/templates/service.j2), conduit's
too. Rendered on the controller as the roles' own tasks render them (tests/shared/unit_helpers.py) and held
against the templates of before (tests/common/data/before/): every other role's unit is byte for byte what
it was, and conduit's two units keep their directives, but for the differences listed here with the reason
each is equal in effect. When service.j2 changes on purpose, these say which units change and how: update
the templates of before with it."""

import hashlib

import pytest
from unit_helpers import ROOT, directives, render_units, unit_tasks

ROLES = sorted(p.name for p in (ROOT / "roles").glob("*") if (p / "tasks").is_dir() and p.name != "common")
WRITERS = [
    "alertmanager",
    "blackbox_exporter",
    "conduit",
    "grafana",
    "node_exporter",
    "postgres_exporter",
    "postgresql",
    "prometheus",
    "victoriametrics",
]
# Inputs a role's units need on the controller, where no facts are gathered: Debian 12's PostgreSQL.
DEFAULTS = {role: {} for role in WRITERS} | {"postgresql": {"postgresql_version": "15"}}
# conduit's unit-relevant inputs: the role's defaults; the conduit scenario's (no frontend: every address,
# the default port; SQLite, plain HTTP); the stack's (behind lb1: web1's own address, resolved on the host
# by install.yml into __conduit_addresses; PostgreSQL on db1; TLS).
CONDUIT = {
    "conduit-defaults": {},
    "conduit-molecule-conduit": {
        "conduit_version": "1.0.0",
        "conduit_workers": 2,
        "conduit_database_engine": "sqlite",
        "conduit_tls_enabled": False,
        "conduit_listen_address": "0.0.0.0",
        "conduit_port": 5566,
    },
    "conduit-molecule-stack": {
        "conduit_version": "1.0.0",
        "conduit_workers": 4,
        "conduit_database_engine": "postgresql",
        "conduit_database_host": "db1",
        "conduit_tls_enabled": True,
        "conduit_listen_address": "web1",
        "conduit_port": 5566,
        "conduit_forwarded_allow_ips": ["lb1"],
        "__conduit_addresses": {"web1": ["10.89.0.12"], "lb1": ["10.89.0.10"]},
    },
}
# Every directive of conduit's units that differs from conduit.service.j2's, ((section, key): (before,
# after)), and why it is the same service.
HUP = ("Service", "ExecReload")
PRIVATE_USERS = ("Service", "PrivateUsers")
DIFFERENCES = {
    HUP: (["/bin/kill -s HUP $MAINPID"], ["/bin/kill -HUP $MAINPID"]),
    PRIVATE_USERS: ([], ["no"]),
}
WHY = {
    HUP: "common's default ExecReload=: the same SIGHUP to the main process, kill's other spelling",
    PRIVATE_USERS: "the shared hardening states systemd's default (no user namespace) explicitly",
}


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    cases = {f"{role}-defaults": (role, inputs) for role, inputs in DEFAULTS.items() if role != "conduit"}
    cases |= {case: ("conduit", inputs) for case, inputs in CONDUIT.items()}
    return render_units(cases, tmp_path_factory.mktemp("units"))


# The one unit template outside common: not a service's (root, before any network, a table loaded at boot).
OWN_UNITS = ["roles/firewall/templates/lookout-firewall.service.j2"]


def test_every_service_unit_comes_from_common():
    """The roles writing a unit through common's entry are these; no service keeps a template of its own."""
    assert [role for role in ROLES if unit_tasks(role)] == WRITERS
    own = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("roles/*/templates/*.service.j2"))
    assert own == OWN_UNITS, f"unit templates outside common: {own}"


# The sandbox lines every unit and drop-in shares, written once in common's hardening.j2.
HARDENING = ROOT / "roles" / "common" / "templates" / "hardening.j2"
# The templates that include it: common's unit, the drop-ins for Debian's units, the firewall's loader.
HARDENED = [
    "roles/common/templates/service.j2",
    "roles/firewall/templates/lookout-firewall.service.j2",
    "roles/haproxy/templates/lookout-hardening.conf.j2",
    "roles/postgresql/templates/postgresql.dropin.conf.j2",
]


def test_the_hardening_block_is_written_once():
    """No template repeats a line of hardening.j2's block (the directives that take no input there): the
    templates that harden a unit include the block instead."""
    shared = {
        line
        for line in HARDENING.read_text().splitlines()
        if "=" in line and not line.startswith(("{", "#", " ")) and "{{" not in line
    }
    assert len(shared) > 10, shared
    repeated = {}
    for path in sorted(ROOT.glob("roles/*/templates/**/*.j2")):
        if path != HARDENING and (lines := shared & set(path.read_text().splitlines())):
            repeated[str(path.relative_to(ROOT))] = sorted(lines)
    assert not repeated, f"hardening lines outside roles/common/templates/hardening.j2: {repeated}"
    including = sorted(
        str(p.relative_to(ROOT))
        for p in ROOT.glob("roles/*/templates/**/*.j2")
        if "{% include 'hardening.j2' +%}" in p.read_text()
    )
    assert including == HARDENED


@pytest.mark.parametrize("role", [role for role in WRITERS if role != "conduit"])
def test_other_units_are_byte_identical(units, role):
    rendered = units[f"{role}-defaults"]
    for path, before in rendered.before.items():
        assert rendered.after[path] == before, f"{role}: {path} changed"


@pytest.mark.parametrize("case", CONDUIT)
def test_conduit_units_keep_their_directives(units, case):
    rendered = units[case]
    assert sorted(rendered.after) == [
        "/etc/systemd/system/conduit-candidate.service",
        "/etc/systemd/system/conduit.service",
    ]
    for path, before in rendered.before.items():
        old, new = directives(before), directives(rendered.after[path])
        changed = {key: (old.get(key, []), new.get(key, [])) for key in old.keys() | new.keys()}
        changed = {key: values for key, values in changed.items() if values[0] != values[1]}
        unexplained = {key: values for key, values in changed.items() if DIFFERENCES.get(key) != values}
        assert not unexplained, f"{case}: {path}: directives changed: {unexplained}"
        assert changed == DIFFERENCES, f"{case}: {path}: expected differences gone: {changed}"
    assert set(WHY) == set(DIFFERENCES)


def test_conduit_stack_unit_binds_the_resolved_address(units):
    unit = directives(units["conduit-molecule-stack"].after["/etc/systemd/system/conduit.service"])
    assert "CONDUIT_BIND=10.89.0.12:5566" in unit["Service", "Environment"]


@pytest.mark.parametrize("case", CONDUIT)
def test_conduit_keeps_what_the_units_writing_changed(units, case):
    """What the run phase reads (run_state.yml): whether a unit changed, and the checksum of each unit
    written, by unit name, as common_files returned it."""
    rendered = units[case]
    expected = {
        name: hashlib.sha1(rendered.after[f"/etc/systemd/system/{name}.service"].encode()).hexdigest()
        for name in ("conduit", "conduit-candidate")
    }
    assert rendered.facts == {"__conduit_units_changed": True, "__conduit_units_written": expected}
