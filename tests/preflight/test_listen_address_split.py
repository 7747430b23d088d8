"""alertmanager_listen_address is an address alone, its port alertmanager_port (as every other role's
listen address and port); so is the gossip's alertmanager_cluster_listen_address, its port
alertmanager_cluster_port (empty still: no cluster). An inventory that still gives the address in the
host:port form of earlier releases would make Alertmanager's flag read host:port:port; the role's preflight
refuses it before anything changes, naming the variable, the value and where the port went:

- the role's own preflight, each old form (of either address) on an inventory host of its own; the new forms
  pass;
- playbooks/preflight.yml (site.yml's first play) on a demo-shaped monitoring host whose host_vars still say
  host:port (host_vars win over the wiring's address, as an operator's override would).
"""

import pytest
import yaml
from controller_helpers import (
    PREFLIGHT_REQUIRED,
    ROOT,
    Outcome,
    ansible_playbook,
    knobs,
    local_host,
    outcomes,
    role_preflight_cases,
)

OLD_FORMS = {
    "wildcard": "0.0.0.0:9093",
    "loopback": "127.0.0.1:9093",
    "ipv6": "[::]:9093",
    "every-address": ":9093",
    "name": "monitor1.example.org:9093",
}
NEW_FORMS = {
    "new-wildcard": {"alertmanager_listen_address": "0.0.0.0", "alertmanager_port": 9093},
    "new-every-address": {"alertmanager_listen_address": ""},
    "new-ipv6": {"alertmanager_listen_address": "[::1]", "alertmanager_port": 19093},
    "new-name": {"alertmanager_listen_address": "monitor1.example.org"},
}
CLUSTER_OLD_FORMS = {
    "cluster-wildcard": "0.0.0.0:9094",
    "cluster-ipv6": "[::]:9094",
    "cluster-every-address": ":9094",
    "cluster-name": "monitor1.example.org:9094",
}
CLUSTER_NEW_FORMS = {
    "cluster-new-wildcard": {
        "alertmanager_cluster_listen_address": "0.0.0.0",
        "alertmanager_cluster_port": 9094,
    },
    "cluster-new-ipv6": {
        "alertmanager_cluster_listen_address": "[::]",
        "alertmanager_cluster_port": 19094,
    },
    "cluster-new-name": {"alertmanager_cluster_listen_address": "monitor1.example.org"},
    "cluster-none": {"alertmanager_cluster_listen_address": ""},
}


@pytest.fixture(scope="module")
def role_outcomes(tmp_path_factory) -> dict[str, Outcome]:
    required = PREFLIGHT_REQUIRED["alertmanager"]
    cases = {case: {**required, "alertmanager_listen_address": old} for case, old in OLD_FORMS.items()}
    cases |= {
        case: {**required, "alertmanager_cluster_listen_address": old}
        for case, old in CLUSTER_OLD_FORMS.items()
    }
    cases |= {case: {**required, **inputs} for case, inputs in (NEW_FORMS | CLUSTER_NEW_FORMS).items()}
    return role_preflight_cases("alertmanager", tmp_path_factory.mktemp("alertmanager"), cases)


# Each listener's address variable and that address's port variable.
LISTENERS = {
    "web": ("alertmanager_listen_address", "alertmanager_port"),
    "cluster": ("alertmanager_cluster_listen_address", "alertmanager_cluster_port"),
}
# Each refused old form: (the case, the listener whose address it sets, the value).
REFUSED = [(case, "web", old) for case, old in OLD_FORMS.items()] + [
    (case, "cluster", old) for case, old in CLUSTER_OLD_FORMS.items()
]


@pytest.mark.parametrize(("case", "listener", "old"), sorted(REFUSED))
def test_the_host_port_form_is_refused_naming_the_variable(role_outcomes, case, listener, old):
    outcome = role_outcomes[case]
    address, port = LISTENERS[listener]
    assert f"alertmanager: {address} must be an address without the port" in outcome.failure, outcome.failure
    assert f"the port is {port}" in outcome.failure, outcome.failure
    assert f'(got "{old}")' in outcome.failure, outcome.failure
    assert outcome.changed == 0


@pytest.mark.parametrize("case", sorted(NEW_FORMS | CLUSTER_NEW_FORMS))
def test_an_address_and_a_port_pass(role_outcomes, case):
    outcome = role_outcomes[case]
    assert outcome.failures == (), outcome.failure
    assert outcome.changed == 0


def test_an_inventory_with_the_old_form_stops_site_before_any_change(tmp_path):
    secrets = yaml.safe_load(
        (ROOT / "inventories" / "demo" / "group_vars" / "all" / "demo_secrets.yml").read_text()
    )
    monitor = local_host(ansible_host="127.0.0.11", alertmanager_listen_address="0.0.0.0:9093")
    inventory = {
        "all": {
            "vars": {**knobs("demo"), **secrets},
            "children": {"monitoring": {"hosts": {"monitor1": monitor}}},
        }
    }
    run = ansible_playbook(ROOT / "playbooks" / "preflight.yml", inventory, tmp_path, json_output=True)
    outcome = outcomes(run)["monitor1"]
    assert outcome.changed == 0
    assert "alertmanager: alertmanager_listen_address" in outcome.failure, outcome.failure
    assert "must be an address without the port (the port is alertmanager_port)" in outcome.failure, (
        outcome.failure
    )
    assert '(got "0.0.0.0:9093")' in outcome.failure, outcome.failure
