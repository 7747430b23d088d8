"""The firewall role and its wiring, on the controller.

- The source filters: addresses, prefixes, names and `any` sorted by family, merged, bad entries named,
  the lock-out check's address test.
- The rules rendered by the role's render entry, through lookout's wiring (group_vars/all/firewall.yml) for
  a production-shaped and a demo-shaped inventory: each host gets exactly the allow lines of its groups, and
  the controller's `nft -c -f` accepts every file. Role-level input sets: names resolved, IPv6, `any`, udp.
- The preflight: every bad input fails before a host changes, naming the variable; the lock-out check
  refuses an SSH rule that does not let Ansible's own connection in, and playbooks/preflight.yml names the
  knob it is wired from.
"""

import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, knobs, local_host, outcomes

HERE = ROOT / "tests" / "firewall"
RULE = re.compile(r"^\t\t(.* dport \d+ accept.*)$", re.M)
SSH_CONNECTION = "198.51.100.7 50022 10.0.0.5 22"


def _filters():
    spec = importlib.util.spec_from_file_location(
        "lookout_firewall_filters", ROOT / "plugins" / "filter" / "firewall.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FILTERS = _filters()


def _nft() -> str:
    found = shutil.which("nft", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
    if not found:
        pytest.fail("nft not found on this controller; run `sudo scripts/setup.sh tools`")
    return found


def _nft_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_nft(), "-c", "-f", str(path)], capture_output=True, text=True, check=False)


def _rules(path: Path) -> set[str]:
    return set(RULE.findall(path.read_text()))


# --- the source filters ---


def test_sources_by_family_merged():
    resolved = {"db1.example.org": ["10.0.0.41", "fd00::41"]}
    sources = FILTERS.firewall_sources(
        ["10.0.0.0/8", "10.1.2.3", "192.0.2.7", "db1.example.org", "2001:db8::/32"], resolved
    )
    assert sources == {
        "any": False,
        "ipv4": ["10.0.0.0/8", "192.0.2.7"],
        "ipv6": ["2001:db8::/32", "fd00::41"],
    }


def test_any_and_both_full_ranges_are_everyone():
    everyone = {"any": True, "ipv4": [], "ipv6": []}
    assert FILTERS.firewall_sources(["10.0.0.1", "any"]) == everyone
    assert FILTERS.firewall_sources(["0.0.0.0/0", "::/0"]) == everyone
    assert FILTERS.firewall_sources(["0.0.0.0/0"]) == {"any": False, "ipv4": ["0.0.0.0/0"], "ipv6": []}


def test_bad_sources_are_named_and_names_found():
    values = ["10.0.0.0/33", "10.0.0.1/8", "300.1.1.1", "db1", "db1.example.org.", "any", "::1", "a b", "-x"]
    assert FILTERS.firewall_bad_sources(values) == ["10.0.0.0/33", "10.0.0.1/8", "300.1.1.1", "a b", "-x"]
    assert FILTERS.firewall_source_names([*values, "db1"]) == ["db1", "db1.example.org."]


def test_allows_checks_the_family_and_the_prefix():
    assert FILTERS.firewall_allows("10.9.8.7", ["10.0.0.0/8"])
    assert not FILTERS.firewall_allows("11.0.0.1", ["10.0.0.0/8", "fd00::/8"])
    assert FILTERS.firewall_allows("::ffff:10.0.0.1", ["10.0.0.0/8"])
    assert FILTERS.firewall_allows("fd00::5", ["fd00::/8"])
    assert FILTERS.firewall_allows("198.51.100.7", ["any"])
    assert FILTERS.firewall_allows("10.0.0.41", ["db1"], {"db1": ["10.0.0.41"]})
    assert not FILTERS.firewall_allows("", ["any"])


# --- rendering through the wiring ---

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
MANAGEMENT = "192.0.2.0/24"
PRODUCTION_SHAPED = {
    "frontend": {"lb1": "10.0.0.51"},
    "web": {"web1": "10.0.0.11", "web2": "10.0.0.12"},
    "database": {"db1": "10.0.0.41"},
    "monitoring": {"mon1": "10.0.0.21", "mon2": "fd00::22"},
    "loadgen": {"load1": "10.0.0.31"},
}
DEMO_SHAPED = {
    "frontend": {},
    "web": {"demo-web1": "172.30.0.11"},
    "database": {},
    "monitoring": {"demo-monitor1": "172.30.0.21"},
    "loadgen": {"demo-load1": "172.30.0.31"},
}


def _wired_render(
    env: str, groups: dict, workdir: Path, only: str | None = None, **overrides
) -> dict[str, Path]:
    """The role's render entry for every host of an inventory shaped like `groups` (or only the host `only`:
    the wiring reads the other hosts from the inventory, not from the play), with the environment's knobs
    and the top-level group_vars/ (linked next to a copy of the play, as playbooks/ links them)."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "render.yml", workdir / "render.yml")
    (workdir / "group_vars").symlink_to(ROOT / "group_vars")
    children = {
        group: {
            "hosts": {
                host: {"ansible_host": address, "firewall_render_dir": str(workdir / "out" / host), **LOCAL}
                for host, address in hosts.items()
            }
        }
        for group, hosts in groups.items()
    }
    inventory = {"all": {"vars": {**knobs(env), **overrides}, "children": children}}
    run = ansible_playbook(workdir / "render.yml", inventory, workdir, *(("--limit", only) if only else ()))
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr
    rendered = [host for hosts in groups.values() for host in hosts if host == only or only is None]
    return {host: workdir / "out" / host / "rules.nft" for host in rendered}


def _from_monitoring(port: int, comment: str, proto: str = "tcp") -> set[str]:
    return {
        f'ip saddr {{ 10.0.0.21 }} {proto} dport {port} accept comment "{comment}"',
        f'ip6 saddr {{ fd00::22 }} {proto} dport {port} accept comment "{comment}"',
    }


def _from_operators(port: int, comment: str) -> set[str]:
    return {
        f'ip saddr {{ 10.0.0.21, {MANAGEMENT} }} tcp dport {port} accept comment "{comment}"',
        f'ip6 saddr {{ fd00::22 }} tcp dport {port} accept comment "{comment}"',
    }


SSH = {f'ip saddr {{ {MANAGEMENT} }} tcp dport 22 accept comment "ssh"'}
NODE = _from_monitoring(9100, "node_exporter from monitoring")
EXPECTED_PRODUCTION_SHAPED = {
    "lb1": SSH
    | NODE
    | {
        'tcp dport 443 accept comment "https from clients"',
        'tcp dport 80 accept comment "http from clients (redirects)"',
    }
    | _from_monitoring(8405, "haproxy metrics from monitoring"),
    "web1": SSH
    | NODE
    | {'ip saddr { 10.0.0.51 } tcp dport 5566 accept comment "conduit from frontend"'}
    | _from_monitoring(5566, "conduit from monitoring")
    | {'ip saddr { 10.0.0.31 } tcp dport 5566 accept comment "conduit from load1"'},
    "db1": SSH
    | NODE
    | {'ip saddr { 10.0.0.11, 10.0.0.12 } tcp dport 5432 accept comment "postgresql from web"'}
    | _from_monitoring(9187, "postgres_exporter from monitoring"),
    "mon1": SSH
    | NODE
    | _from_operators(9090, "prometheus from monitoring and operators")
    | _from_operators(9093, "alertmanager from monitoring and operators")
    # The testing environment's blackbox exporter listens on loopback: no opening.
    | _from_operators(3000, "grafana from monitoring and operators")
    # The testing environment's gossip runs over mutual TLS, TCP only: no udp opening.
    | _from_monitoring(9094, "alertmanager cluster from monitoring")
    | {'ip saddr { 10.0.0.31 } tcp dport 9090 accept comment "prometheus remote write from loadgen"'},
    "load1": SSH | NODE,
}


@pytest.fixture(scope="module")
def production_shaped(tmp_path_factory) -> dict[str, Path]:
    """The testing environment's knobs (Grafana and k6's remote write on) on a production-shaped inventory,
    one monitoring host on IPv6, and one site-specific opening for the web hosts."""
    extra = {"web": [{"port": 5566, "sources": ["10.0.0.31"], "comment": "conduit from load1"}]}
    return _wired_render(
        "testing",
        PRODUCTION_SHAPED,
        tmp_path_factory.mktemp("production-shaped"),
        lookout_management_sources=[MANAGEMENT],
        lookout_firewall_extra_allow=extra,
    )


@pytest.mark.parametrize("host", sorted(EXPECTED_PRODUCTION_SHAPED))
def test_each_group_gets_exactly_its_openings(production_shaped, host):
    assert _rules(production_shaped[host]) == EXPECTED_PRODUCTION_SHAPED[host]


def test_a_blackbox_exporter_on_the_network_is_opened_to_monitoring_and_operators(tmp_path):
    rendered = _wired_render(
        "testing", PRODUCTION_SHAPED, tmp_path, "mon1", lookout_management_sources=[MANAGEMENT],
        lookout_blackbox_listen_address="0.0.0.0",
    )  # fmt: skip
    assert _rules(rendered["mon1"]) == EXPECTED_PRODUCTION_SHAPED["mon1"] | _from_operators(
        9115, "blackbox exporter from monitoring and operators"
    )


def test_hosts_of_one_group_get_the_same_rules(production_shaped):
    assert _rules(production_shaped["web2"]) == _rules(production_shaped["web1"])
    assert _rules(production_shaped["mon2"]) == _rules(production_shaped["mon1"])


@pytest.mark.parametrize("host", sorted(EXPECTED_PRODUCTION_SHAPED))
def test_rendered_rules_pass_nft_check(production_shaped, host):
    check = _nft_check(production_shaped[host])
    assert check.returncode == 0, production_shaped[host].read_text() + check.stdout + check.stderr


def test_rendered_rules_replace_only_their_own_table(production_shaped):
    text = production_shaped["db1"].read_text()
    assert text.startswith("#\n# Ansible managed")
    assert "flush" not in text
    head = [line for line in text.splitlines() if line and not line.startswith("#")][:3]
    assert head == [
        "table inet lookout_firewall",
        "delete table inet lookout_firewall",
        "table inet lookout_firewall {",
    ]
    assert re.search(r'^\tcomment "sha256:[0-9a-f]{64}"$', text, re.M)
    assert "type filter hook input priority filter; policy drop;" in text
    assert "hook output" not in text and "hook forward" not in text
    for essential in ('iif "lo" accept', "ct state established,related accept", "nd-neighbor-solicit"):
        assert essential in text


def test_the_checksum_follows_the_rules(production_shaped):
    def fingerprint(host):
        return re.search(r'comment "(sha256:[0-9a-f]+)"', production_shaped[host].read_text()).group(1)

    assert fingerprint("mon1") == fingerprint("mon2")
    assert len({fingerprint(h) for h in ("lb1", "web1", "db1", "mon1", "load1")}) == 5


def test_boot_unit_loads_the_rules_and_never_flushes(production_shaped):
    text = (production_shaped["db1"].parent / "lookout-firewall.service").read_text()
    unit = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    assert "ExecStart=/usr/sbin/nft -f /etc/lookout-firewall/rules.nft\n" in unit
    assert "ExecStop" not in unit and "flush" not in unit
    for line in (
        "Before=network-pre.target shutdown.target",
        "After=nftables.service",
        "WantedBy=sysinit.target",
    ):
        assert line in unit


def test_demo_shaped_web_host_is_open_to_clients(tmp_path):
    """Without a frontend, clients reach the web host's Conduit port directly (the demo's shape)."""
    rendered = _wired_render("demo", DEMO_SHAPED, tmp_path, lookout_management_sources=[MANAGEMENT])
    monitoring = 'ip saddr {{ 172.30.0.21 }} tcp dport {} accept comment "{}"'
    assert _rules(rendered["demo-web1"]) == SSH | {
        monitoring.format(9100, "node_exporter from monitoring"),
        'tcp dport 5566 accept comment "conduit from clients"',
        monitoring.format(5566, "conduit from monitoring"),
    }
    # Grafana off, k6's remote write on: no 3000, Prometheus open to the load host.
    rules = _rules(rendered["demo-monitor1"])
    assert not [r for r in rules if "dport 3000" in r]
    assert (
        'ip saddr { 172.30.0.31 } tcp dport 9090 accept comment "prometheus remote write from loadgen"'
        in rules
    )
    for path in rendered.values():
        assert _nft_check(path).returncode == 0, path.read_text()


# --- rendering the role alone ---

ROLE_INPUT_SETS = {
    "names_and_ipv6": {
        "firewall_ssh_port": 2222,
        "firewall_ssh_sources": ["localhost", "2001:db8::/32"],
        "firewall_allow": [
            {"port": 9100, "sources": ["localhost", "127.0.0.0/8"], "comment": "merged into the prefix"},
            {"port": 53, "proto": "udp", "sources": ["fd00::53"]},
        ],
    },
    "open_to_everyone": {
        "firewall_ssh_sources": ["any"],
        "firewall_allow": [{"port": 443, "sources": ["0.0.0.0/0", "::/0"], "comment": "https"}],
    },
}


def _localhost_ipv6() -> bool:
    """Whether this controller resolves localhost to ::1 too (its /etc/hosts decides)."""
    found = socket.getaddrinfo("localhost", None, proto=socket.IPPROTO_TCP)
    return any(info[0] == socket.AF_INET6 for info in found)


def _expected_role(name: str) -> set[str]:
    if name == "open_to_everyone":
        return {'tcp dport 22 accept comment "ssh"', 'tcp dport 443 accept comment "https"'}
    ssh6 = "::1, 2001:db8::/32" if _localhost_ipv6() else "2001:db8::/32"
    expected = {
        'ip saddr { 127.0.0.1 } tcp dport 2222 accept comment "ssh"',
        f'ip6 saddr {{ {ssh6} }} tcp dport 2222 accept comment "ssh"',
        'ip saddr { 127.0.0.0/8 } tcp dport 9100 accept comment "merged into the prefix"',
        "ip6 saddr { fd00::53 } udp dport 53 accept",
    }
    if _localhost_ipv6():
        expected.add('ip6 saddr { ::1 } tcp dport 9100 accept comment "merged into the prefix"')
    return expected


@pytest.fixture(scope="module")
def role_rendered(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("role")
    hosts = {
        name: local_host(firewall_render_dir=str(work / name), **inputs)
        for name, inputs in ROLE_INPUT_SETS.items()
    }
    run = ansible_playbook(HERE / "render.yml", {"all": {"hosts": hosts}}, work)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr
    return {name: work / name / "rules.nft" for name in ROLE_INPUT_SETS}


@pytest.mark.parametrize("name", sorted(ROLE_INPUT_SETS))
def test_role_renders_the_input_sets(role_rendered, name):
    assert _rules(role_rendered[name]) == _expected_role(name)
    check = _nft_check(role_rendered[name])
    assert check.returncode == 0, role_rendered[name].read_text() + check.stderr


def test_nft_check_refuses_a_broken_file(role_rendered, tmp_path):
    """The role's validate command must be able to say no."""
    broken = tmp_path / "broken.nft"
    broken.write_text(role_rendered["open_to_everyone"].read_text().replace("dport 443", "dport 70000"))
    assert _nft_check(broken).returncode != 0


# --- preflight ---

GOOD = {"firewall_ssh_sources": ["10.0.0.0/8"], "firewall_allow": [{"port": 443, "sources": ["any"]}]}
BAD = {
    "ssh_port_zero": (
        {"firewall_ssh_port": 0},
        "firewall: firewall_ssh_port must be a TCP port, 1-65535 (got 0)",
    ),
    "ssh_port_too_high": ({"firewall_ssh_port": 70000}, "firewall: firewall_ssh_port must be a TCP port"),
    "rollback_too_short": (
        {"firewall_rollback_seconds": 5},
        "firewall: firewall_rollback_seconds must be a whole number of seconds, at least 20",
    ),
    "ssh_sources_empty": (
        {"firewall_ssh_sources": []},
        "firewall: firewall_ssh_sources must list at least one source",
    ),
    "ssh_sources_a_string": (
        {"firewall_ssh_sources": "10.0.0.0/8"},
        "firewall: firewall_ssh_sources must list",
    ),
    "ssh_source_prefix_too_long": ({"firewall_ssh_sources": ["10.0.0.0/33"]}, "not valid: 10.0.0.0/33"),
    "ssh_source_host_bits": ({"firewall_ssh_sources": ["10.0.0.1/8"]}, "not valid: 10.0.0.1/8"),
    "ssh_source_unresolvable": (
        {"firewall_ssh_sources": ["nohost.lookout.invalid"]},
        "firewall_ssh_sources: nohost.lookout.invalid does not resolve on ssh_source_unresolvable",
    ),
    "allow_not_a_list": (
        {"firewall_allow": {"port": 443}},
        "firewall: firewall_allow must be a list of rules",
    ),
    "allow_port_zero": (
        {"firewall_allow": [{"port": 0, "sources": ["any"]}]},
        "firewall: firewall_allow[0] must have a port",
    ),
    "allow_without_port": (
        {"firewall_allow": [{"sources": ["any"]}]},
        "firewall: firewall_allow[0] must have a port",
    ),
    "allow_proto_icmp": (
        {"firewall_allow": [*GOOD["firewall_allow"], {"port": 1, "proto": "icmp", "sources": ["any"]}]},
        "firewall: firewall_allow[1] must have",
    ),
    "allow_sources_empty": (
        {"firewall_allow": [{"port": 443, "sources": []}]},
        "firewall: firewall_allow[0] must",
    ),
    "allow_without_sources": ({"firewall_allow": [{"port": 443}]}, "firewall: firewall_allow[0] must"),
    "allow_bad_address": (
        {"firewall_allow": [{"port": 443, "sources": ["300.1.1.1"]}]},
        "not valid: 300.1.1.1",
    ),
    "allow_quote_in_comment": (
        {"firewall_allow": [{"port": 443, "sources": ["any"], "comment": 'say "hi"'}]},
        "firewall: firewall_allow[0] must have",
    ),
    "allow_unresolvable": (
        {"firewall_allow": [{"port": 443, "sources": ["nohost.lookout.invalid"]}]},
        "firewall_allow: nohost.lookout.invalid does not resolve on allow_unresolvable",
    ),
}
LOCKOUT = {
    "outside": (
        {"firewall_ssh_sources": ["10.0.0.0/8"]},
        "the host sees it come from 198.51.100.7 to port 22",
    ),
    "other_port": (
        {"firewall_ssh_sources": ["198.51.100.0/24"], "firewall_ssh_port": 2222},
        "the SSH rule allows 198.51.100.0/24 to port 2222",
    ),
    "named_knob": (
        {
            "firewall_ssh_sources": ["10.0.0.0/8"],
            "common_preflight_knobs": {"firewall_ssh_sources": ["lookout_management_sources"]},
        },
        "firewall: firewall_ssh_sources (from lookout_management_sources) and firewall_ssh_port must let",
    ),
}
LOCKOUT_PASSES = {
    "inside": {"firewall_ssh_sources": ["198.51.100.0/24"]},
    "everyone": {"firewall_ssh_sources": ["any"]},
    "address": {"firewall_ssh_sources": ["10.0.0.0/8", "198.51.100.7"]},
}


def _preflight(
    workdir: Path, cases: dict[str, dict], *extra: str, ssh_connection: str | None = SSH_CONNECTION
):
    """One run of the role's preflight, a host per case; SSH_CONNECTION as sshd would set it for the
    commands Ansible runs (the local connection's commands inherit this environment)."""
    workdir.mkdir(parents=True, exist_ok=True)
    hosts = {case: local_host(**{**GOOD, **inputs}) for case, inputs in cases.items()}
    with pytest.MonkeyPatch.context() as patch:
        if ssh_connection is None:
            patch.delenv("SSH_CONNECTION", raising=False)
        else:
            patch.setenv("SSH_CONNECTION", ssh_connection)
        run = ansible_playbook(
            HERE / "preflight.yml", {"all": {"hosts": hosts}}, workdir, *extra, json_output=True
        )
    return outcomes(run)


@pytest.fixture(scope="module")
def preflight(tmp_path_factory) -> dict:
    """Bad inputs over a local connection: its SSH_CONNECTION says nothing about the hosts, so the lock-out
    check stays out of it even though 198.51.100.7 is outside the good inputs' SSH sources."""
    cases = {"good": {}} | {case: inputs for case, (inputs, _) in BAD.items()}
    return _preflight(tmp_path_factory.mktemp("preflight"), cases)


# Plays an SSH connection on the controller: the role's gate says "over SSH", and the commands see the
# SSH_CONNECTION sshd would set. The live test (test_firewall_live.py) reaches a host over real SSH.
OVER_SSH = ("-e", json.dumps({"__firewall_over_ssh": True}))


@pytest.fixture(scope="module")
def lockout(tmp_path_factory) -> dict:
    cases = {case: inputs for case, (inputs, _) in LOCKOUT.items()} | LOCKOUT_PASSES
    return _preflight(tmp_path_factory.mktemp("lockout"), cases, *OVER_SSH)


def test_good_inputs_pass(preflight):
    assert preflight["good"].failures == ()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_naming_the_variable(preflight, case):
    assert BAD[case][1] in preflight[case].failure, preflight[case].failure


@pytest.mark.parametrize("case", sorted(LOCKOUT))
def test_lockout_is_refused_before_anything_changes(lockout, case):
    failure = lockout[case].failure
    assert LOCKOUT[case][1] in failure, failure
    assert "or the new rules would lock it out of" in failure
    assert lockout[case].changed == 0


@pytest.mark.parametrize("case", sorted(LOCKOUT_PASSES))
def test_rules_that_let_ansible_in_pass(lockout, case):
    assert lockout[case].failures == ()


def test_ssh_without_ssh_connection_is_refused(tmp_path):
    """An SSH connection whose environment has no SSH_CONNECTION: the address cannot be checked."""
    outcome = _preflight(tmp_path, {"unknown": {}}, *OVER_SSH, ssh_connection=None)["unknown"]
    assert "the host sees it come from (unknown: no SSH_CONNECTION)" in outcome.failure, outcome.failure


def test_site_preflight_names_the_knob(tmp_path):
    """playbooks/preflight.yml (site.yml's first play) on the testing inventory: a controller outside
    lookout_management_sources stops the run before any host changes, naming the input and the knob."""
    helpers = ROOT / "tests" / "inventories" / "inventory_helpers.py"
    spec = importlib.util.spec_from_file_location("lookout_inventory_helpers", helpers)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    inventory, password_file = module.make_test_inventory("testing", tmp_path)
    local = {**LOCAL, "ansible_become": False, "__firewall_over_ssh": True}
    command = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory)]
    command += [str(ROOT / "playbooks" / "preflight.yml"), "--limit", "test-load1", "-e", json.dumps(local)]
    command += ["--vault-id", f"testing@{password_file}"]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible-tmp"),
        "SSH_CONNECTION": "203.0.113.200 50022 198.51.100.31 22",
    }
    run = subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd="/", timeout=300)
    assert run.returncode != 0, run.stdout[-3000:]
    output = " ".join(run.stdout.split())
    assert (
        "firewall_ssh_sources (from lookout_management_sources) and firewall_ssh_port must let" in output
    ), output[-3000:]
    assert "the host sees it come from 203.0.113.200 to port 22" in output
    assert yaml.safe_load((inventory / "group_vars" / "all" / "vars.yml").read_text())[
        "lookout_firewall_enabled"
    ]
