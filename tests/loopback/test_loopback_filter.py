"""The loopback rule (plugins/filter/loopback.py, `lookout.stack.loopback_address`): where a role reaches its
own server from the host itself.

- in Python: a wildcard listen address (`''`, `*`, `0.0.0.0`, `::`, `[::]`) is 127.0.0.1, never ::1 (the
  internal certificate names localhost and 127.0.0.1 only); any other address is returned as it is; with
  `bracket`, an IPv6 literal comes back in brackets, as a URL or host:port takes it;
- through ansible-playbook, each role's own variables with the listen addresses its preflight accepts: the URL
  (or host) its readiness wait, health gate or scrape of itself uses.
"""

import json
import sys

import pytest
from ansible.errors import AnsibleFilterError
from controller_helpers import ROOT, ansible_playbook, local_host

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from loopback import loopback_address

WILDCARDS = ("", "*", "0.0.0.0", "::", "[::]")


@pytest.mark.parametrize("address", WILDCARDS)
@pytest.mark.parametrize("bracket", [False, True])
def test_a_wildcard_is_reached_on_ipv4_loopback(address, bracket):
    assert loopback_address(address, bracket=bracket) == "127.0.0.1"


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "192.0.2.5", "localhost", "monitor1.example.org", "::1", "2001:db8::5", "[::1]"]
)
def test_any_other_address_is_returned_as_it_is(address):
    assert loopback_address(address) == address


@pytest.mark.parametrize(
    ("address", "bracketed"),
    [
        ("::1", "[::1]"),
        ("2001:db8::5", "[2001:db8::5]"),
        ("[2001:db8::5]", "[2001:db8::5]"),
        ("192.0.2.5", "192.0.2.5"),
        ("localhost", "localhost"),
    ],
)
def test_bracket_puts_an_ipv6_literal_in_brackets_once(address, bracketed):
    assert loopback_address(address, bracket=True) == bracketed


@pytest.mark.parametrize("value", [None, 8080, ["0.0.0.0"]])
def test_anything_but_a_string_is_refused_by_name(value):
    with pytest.raises(AnsibleFilterError, match="loopback_address: a listen address is a string"):
        loopback_address(value)


# Per role: the input holding the listen address, the variable derived from it, the other inputs it reads,
# and per listen address the preflight accepts, the value the variable takes.
V6 = "2001:db8::5"
BRACKETED = {
    "": "127.0.0.1",
    "0.0.0.0": "127.0.0.1",
    "[::]": "127.0.0.1",
    "192.0.2.5": "192.0.2.5",
    "localhost": "localhost",
    f"[{V6}]": f"[{V6}]",
}
# The exporters, Prometheus, VictoriaMetrics: an address ([IPv6] in brackets) or a name, '' for every one.
BRACKETED_ROLES = ("blackbox_exporter", "node_exporter", "postgres_exporter", "prometheus", "victoriametrics")
ROLES = {
    **{
        role: (f"{role}_listen_address", f"__{role}_local_address", {}, BRACKETED) for role in BRACKETED_ROLES
    },
    "haproxy": (
        "haproxy_metrics_listen_address",
        "__haproxy_metrics_local_address",
        {},
        {"": "127.0.0.1", "*": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "127.0.0.1", V6: f"[{V6}]"},
    ),
    "alertmanager": (
        "alertmanager_listen_address",
        "__alertmanager_ready_url",
        {
            "alertmanager_tls_enabled": True,
            "alertmanager_web_external_url": "https://am.example.org/am/",
            "alertmanager_port": 9093,
        },
        {
            address: f"https://{host}:9093/am/-/ready"
            for address, host in {
                "": "127.0.0.1",
                "0.0.0.0": "127.0.0.1",
                "[::]": "127.0.0.1",
                "192.0.2.5": "192.0.2.5",
                f"[{V6}]": f"[{V6}]",
            }.items()
        },
    ),
    "grafana": (
        "grafana_listen_address",
        "__grafana_local_url",
        {"grafana_tls_enabled": True, "grafana_protocol": "http", "grafana_port": 3000},
        {
            "": "https://127.0.0.1:3000",
            "0.0.0.0": "https://127.0.0.1:3000",
            "::": "https://127.0.0.1:3000",
            "192.0.2.5": "https://192.0.2.5:3000",
            V6: f"https://[{V6}]:3000",
        },
    ),
    # conduit_listen_address as the host resolved it (an address resolves to itself).
    "conduit": (
        "conduit_listen_address",
        "__conduit_health_url",
        {"conduit_tls_enabled": False, "conduit_port": 5566},
        {
            "0.0.0.0": "http://127.0.0.1:5566/health",
            "::": "http://127.0.0.1:5566/health",
            "192.0.2.5": "http://192.0.2.5:5566/health",
            V6: f"http://[{V6}]:5566/health",
        },
    ),
}
CONDUIT_TLS_NAMES = {"0.0.0.0": [], "::": [], "192.0.2.5": ["192.0.2.5"], V6: [V6]}

PLAY = """
- name: Render {role}'s own variables
  hosts: {role}
  gather_facts: false
  vars_files:
    - {vars_file}
  tasks:
    - name: Show what the role derives from its listen address
      ansible.builtin.debug:
        msg: "{{{{ {{'value': {derived}{extra}}} }}}}"
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """{(role, listen address): {'value': the derived variable, ...}}, from one ansible-playbook run."""
    workdir = tmp_path_factory.mktemp("loopback")
    plays, groups, cases = [], {}, {}
    for role, (inputs, derived, others, expected) in ROLES.items():
        extra = ", 'tls_names': __conduit_tls_extra_names" if role == "conduit" else ""
        vars_file = ROOT / "roles" / role / "vars" / "main.yml"
        plays.append(PLAY.format(role=role, vars_file=vars_file, derived=derived, extra=extra))
        hosts = {}
        for number, address in enumerate(expected):
            host = f"{role}-{number}"
            hosts[host] = local_host(**{inputs: address}, **others)
            cases[host] = (role, address)
        groups[role] = {"hosts": hosts}
    playbook = workdir / "render.yml"
    playbook.write_text("".join(plays))
    run = ansible_playbook(playbook, {"all": {"children": groups}}, workdir, json_output=True)
    assert run.returncode == 0, run.stdout + run.stderr
    shown = {}
    for play in json.loads(run.stdout)["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                shown[cases[host]] = result["msg"]
    return shown


@pytest.mark.parametrize(
    ("role", "address"), [(role, address) for role, spec in ROLES.items() for address in spec[3]]
)
def test_each_role_reaches_its_own_server_where_the_rule_says(rendered, role, address):
    assert rendered[(role, address)]["value"] == ROLES[role][3][address]


@pytest.mark.parametrize("address", CONDUIT_TLS_NAMES)
def test_conduits_certificate_names_the_address_its_health_gate_reaches_unless_loopback(rendered, address):
    assert rendered[("conduit", address)]["tls_names"] == CONDUIT_TLS_NAMES[address]


def test_no_role_keeps_a_copy_of_the_rule():
    """The wildcards and loopback addresses as a rule spells them are the filter's alone."""
    spelled = ("'0.0.0.0'", "'::'", "'[::]'", "'::1'", "'[::1]'")
    copies = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "roles").rglob("*"))
        if path.is_file() and path.suffix in {".yml", ".j2"} and any(s in path.read_text() for s in spelled)
    ]
    assert copies == []
