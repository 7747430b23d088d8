"""The critical route's own group wait and interval (alertmanager_critical_group_wait and _interval, wired
from lookout_alert_critical_group_wait and _interval): rendered on the route of severity `critical` only,
the other severities keep the default route's; preflight refuses malformed durations and a critical route
slower than the default one, naming the variable (and, through playbooks/preflight.yml, the knob)."""

import pytest
from controller_helpers import (
    ENVIRONMENTS,
    Outcome,
    demo_monitoring_preflight,
    knobs,
    role_preflight_cases,
)

REQUIRED = {
    "alertmanager_slack_channels": {"critical": "#alerts", "warning": "#warnings"},
    "alertmanager_slack_api_url": "https://hooks.slack.example.org/services/test",
}


def _severity_routes(config: dict) -> dict[str, dict]:
    """The Slack routes by the severity they match."""
    routes = {}
    for route in config["route"]["routes"]:
        if route["receiver"].startswith("slack-"):
            (matcher,) = route["matchers"]
            routes[matcher.split('"')[1]] = route
    return routes


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_critical_route_waits_the_environments_critical_times(rendered, env):
    routes = _severity_routes(rendered[env].config)
    environment = knobs(env)
    assert routes["critical"]["group_wait"] == environment["lookout_alert_critical_group_wait"]
    assert routes["critical"]["group_interval"] == environment["lookout_alert_critical_group_interval"]
    # Warnings keep the default route's (inherited, not repeated on their route).
    assert "group_wait" not in routes["warning"] and "group_interval" not in routes["warning"]
    route = rendered[env].config["route"]
    assert route["group_wait"] == environment["lookout_alert_group_wait"]
    assert route["group_interval"] == environment["lookout_alert_group_interval"]
    # Grouping is the default route's: one WebsiteDown per probed target is one group, one message.
    assert "group_by" not in routes["critical"]


# Two members (the role checks the timing before it looks at the members themselves).
CLUSTERED = {
    "alertmanager_cluster_listen_address": "127.0.0.1",
    "alertmanager_cluster_members": ["<this host>", "its-peer"],
}
# case -> (bad inputs, the variable named, what the message shows)
BAD = {
    "critical-wait-with-space": (
        {"alertmanager_critical_group_wait": "2 s"},
        "alertmanager_critical_group_wait",
        '(got "2 s")',
    ),
    "critical-interval-in-words": (
        {"alertmanager_critical_group_interval": "ten seconds"},
        "alertmanager_critical_group_interval",
        '(got "ten seconds")',
    ),
    "critical-wait-longer-than-the-default": (
        {"alertmanager_critical_group_wait": "1m"},
        "alertmanager_critical_group_wait",
        "must be at most alertmanager_group_wait: pages never wait longer than the other alerts"
        " (got 1m and 30s)",
    ),
    "critical-interval-longer-than-the-default": (
        {"alertmanager_group_interval": "1m", "alertmanager_critical_group_interval": "1m30s"},
        "alertmanager_critical_group_interval",
        "must be at most alertmanager_group_interval: pages never wait longer than the other alerts"
        " (got 1m30s and 1m)",
    ),
    "critical-interval-zero": (
        {"alertmanager_critical_group_interval": "0s"},
        "alertmanager_critical_group_interval",
        "must be above 0: Alertmanager refuses a group_interval of 0 (got 0s)",
    ),
    "peer-timeout-in-words": (
        {"alertmanager_cluster_peer_timeout": "five seconds"},
        "alertmanager_cluster_peer_timeout",
        '(got "five seconds")',
    ),
    # Clustered: the second member looks at the notification log one peer timeout after its flush; a
    # resolved message sent before that would make it send its stale firing one.
    "critical-interval-within-the-peer-timeout": (
        {**CLUSTERED, "alertmanager_critical_group_interval": "10s"},
        "alertmanager_critical_group_interval",
        "must be longer than alertmanager_cluster_peer_timeout times the members less one (1)",
    ),
    "group-interval-within-the-peer-timeout": (
        {**CLUSTERED, "alertmanager_group_interval": "10s", "alertmanager_cluster_peer_timeout": "10s"},
        "alertmanager_group_interval",
        "a resolved message sent before would make it send the firing one again (got 10s and 10s)",
    ),
}
GOOD = {
    "defaults": {},
    "fast": {"alertmanager_critical_group_wait": "0s", "alertmanager_critical_group_interval": "500ms"},
    "as-the-default-route": {
        "alertmanager_critical_group_wait": "30s",
        "alertmanager_critical_group_interval": "5m",
    },
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Outcome]:
    hosts = {case: {**REQUIRED, **inputs} for case, inputs in GOOD.items()}
    hosts |= {case: {**REQUIRED, **inputs} for case, (inputs, _, _) in BAD.items()}
    # This host is a member of its own cluster.
    for host, inputs in hosts.items():
        if "alertmanager_cluster_members" in inputs:
            inputs["alertmanager_cluster_members"] = [host, "its-peer"]
    return role_preflight_cases("alertmanager", tmp_path_factory.mktemp("alertmanager-critical"), hosts)


@pytest.mark.parametrize("case", sorted(GOOD))
def test_good_values_pass(results, case):
    assert results[case].failures == (), results[case].failure
    assert results[case].changed == 0


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_value_is_refused_naming_the_variable(results, case):
    inputs, variable, shown = BAD[case]
    outcome = results[case]
    assert outcome.failures, f"accepted {inputs}"
    assert f"alertmanager: {variable}" in outcome.failure, outcome.failure
    assert shown in outcome.failure, outcome.failure
    assert outcome.changed == 0


def test_a_critical_wait_longer_than_the_default_names_the_knobs(tmp_path):
    """playbooks/preflight.yml with the demo's knobs but a critical group wait above lookout_alert_group_wait:
    refused before anything changes, naming both inputs and the knobs they come from."""
    outcome = demo_monitoring_preflight(tmp_path, lookout_alert_critical_group_wait="1m")
    assert outcome.changed == 0
    assert (
        "alertmanager: alertmanager_critical_group_wait (from lookout_alert_critical_group_wait)"
        " must be at most alertmanager_group_wait (from lookout_alert_group_wait)"
    ) in outcome.failure, outcome.failure
