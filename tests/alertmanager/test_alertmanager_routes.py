"""The rendered alertmanager.yml of every environment: valid for amtool, routed and inhibited as intended."""

import re

import pytest
from alertmanager_helpers import HEARTBEAT_URL, NO_HEARTBEAT, amtool
from controller_helpers import ENVIRONMENTS

DEFAULT_SEVERITY = "warning"
HEARTBEAT = "heartbeat"
# What the render entry point writes instead of the heartbeat URL (roles/alertmanager/vars/main.yml).
PLACEHOLDER = "https://heartbeat.invalid/rendered-without-the-secret"


def route_test(rendered, expected_receiver: str, **labels: str):
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={rendered.config_file}",
        f"--verify.receivers={expected_receiver}",
        *(f"{name}={value}" for name, value in labels.items()),
    )
    assert result.returncode == 0, (
        f"{rendered.env}: {labels} went to {result.stdout.strip()!r}, expected {expected_receiver!r}"
        f"\n{result.stderr}"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_amtool_accepts_the_configuration_and_its_templates(rendered, env):
    result = amtool("check-config", str(rendered[env].config_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout, "the Slack templates were not found next to the configuration"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_severity_reaches_its_own_receiver(rendered, env):
    for severity in rendered[env].channels:
        route_test(
            rendered[env],
            f"slack-{severity}",
            alertname="WebsiteDown",
            severity=severity,
            env=env,
            instance="web1:8000",
        )


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(
    ("alertname", "severity"),
    [
        ("WebsiteDown", "critical"),
        ("WebHostDown", "warning"),
        ("BackendDown", "warning"),
        ("HighRequestRate", "warning"),
        ("TargetDown", "critical"),
        ("HighErrorRate", "warning"),
        ("HighLatency", "warning"),
        ("NodeDiskSpaceLow", "warning"),
        ("NodeMemoryLow", "warning"),
        ("PostgresDown", "critical"),
        ("PostgresTooManyConnections", "warning"),
        ("BackupTooOld", "warning"),
        ("BackupRestoreFailed", "critical"),
    ],
)
def test_lookout_alerts_are_routed_by_severity(rendered, env, alertname, severity):
    route_test(
        rendered[env],
        f"slack-{severity}",
        alertname=alertname,
        severity=severity,
        env=env,
        instance="web1:8000",
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("labels", [{}, {"severity": "info"}], ids=["no-severity", "unknown-severity"])
def test_unrouted_alerts_fall_back_to_the_default_severity(rendered, env, labels):
    route_test(rendered[env], f"slack-{DEFAULT_SEVERITY}", alertname="Unexpected", env=env, **labels)


def _slack_receivers(config: dict) -> list[dict]:
    return [r for r in config["receivers"] if r["name"] != HEARTBEAT]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_receivers_post_to_the_environments_channels(rendered, env):
    config = rendered[env].config
    channels = {
        receiver["name"]: [slack["channel"] for slack in receiver["slack_configs"]]
        for receiver in _slack_receivers(config)
    }
    expected = {f"slack-{severity}": [channel] for severity, channel in rendered[env].channels.items()}
    assert channels == expected
    assert sorted(r["name"] for r in config["receivers"]) == sorted([*expected, HEARTBEAT])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_webhook_url_stays_out_of_the_configuration(rendered, env):
    config = rendered[env].config
    url_file = str(rendered[env].directory / "slack_api_url")
    for receiver in _slack_receivers(config):
        for slack in receiver["slack_configs"]:
            assert slack["api_url_file"] == url_file
            assert "api_url" not in slack
            assert slack["send_resolved"] is True
            for field in ("title", "text", "color", "fallback"):
                assert "lookout.slack." in slack[field], f"{field} does not use the lookout templates"
    assert "slack_api_url" not in config.get("global", {})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_grouping_and_waits_follow_the_environment(rendered, env):
    route = rendered[env].config["route"]
    knobs = rendered[env].knobs
    assert route["group_by"] == ["alertname", "env", "instance"]
    assert route["receiver"] == f"slack-{DEFAULT_SEVERITY}"
    assert route["group_wait"] == knobs["lookout_alert_group_wait"]
    assert route["group_interval"] == knobs["lookout_alert_group_interval"]
    assert route["repeat_interval"] == knobs["lookout_alert_repeat_interval"]


# --- The dead-man's switch: Watchdog to the heartbeat receiver only --------------------------------------


@pytest.mark.parametrize("env", [*ENVIRONMENTS, NO_HEARTBEAT])
@pytest.mark.parametrize("severity", ["heartbeat", "critical", "warning", None])
def test_watchdog_reaches_the_heartbeat_receiver_only(rendered, env, severity):
    labels = {"alertname": "Watchdog", "env": rendered[env].env}
    route_test(rendered[env], HEARTBEAT, **labels, **({"severity": severity} if severity else {}))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_watchdog_reaches_the_heartbeat_receiver(rendered, env):
    # Another alert of the heartbeat's severity, and a name that merely contains Watchdog, go to Slack.
    route_test(rendered[env], f"slack-{DEFAULT_SEVERITY}", alertname="WatchdogX", severity="heartbeat")
    route_test(rendered[env], "slack-critical", alertname="Watchdog2", severity="critical", env=env)


def _heartbeat(config: dict) -> tuple[dict, dict]:
    (route,) = [r for r in config["route"]["routes"] if r["receiver"] == HEARTBEAT]
    (receiver,) = [r for r in config["receivers"] if r["name"] == HEARTBEAT]
    return route, receiver


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_heartbeat_repeats_on_the_environments_interval(rendered, env):
    route, receiver = _heartbeat(rendered[env].config)
    assert route == {
        "receiver": HEARTBEAT,
        "matchers": ['alertname="Watchdog"'],
        "group_by": ["alertname"],
        "group_wait": "0s",
        "group_interval": "10s",
        "repeat_interval": rendered[env].knobs["lookout_heartbeat_interval"],
    }
    assert rendered[env].config["route"]["routes"][0] == route, "the heartbeat route comes first"
    # A webhook, never resolved (only its silence must be noticed), to the placeholder: the render
    # entry point never writes the secret.
    assert receiver == {
        "name": HEARTBEAT,
        "webhook_configs": [{"url": PLACEHOLDER, "send_resolved": False}],
    }
    assert HEARTBEAT_URL not in rendered[env].config_file.read_text()


def test_without_a_heartbeat_url_the_receiver_sends_nothing(rendered):
    config = rendered[NO_HEARTBEAT].config
    _, receiver = _heartbeat(config)
    assert receiver == {"name": HEARTBEAT}
    result = amtool("check-config", str(rendered[NO_HEARTBEAT].config_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_configuration_says_it_is_managed(rendered):
    header = rendered["production"].config_file.read_text().splitlines()[:3]
    assert all(line.startswith("#") for line in header)
    assert any("Ansible managed" in line for line in header)


# --- Inhibition, evaluated on the parsed rules the way Alertmanager applies them ---------------------

MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"\s*$')


def matches(matchers: list[str], labels: dict) -> bool:
    for matcher in matchers:
        parsed = MATCHER.match(matcher)
        assert parsed, f"cannot read matcher {matcher!r}"
        name, op, value = parsed.groups()
        actual = labels.get(name, "")
        ok = {
            "=": actual == value,
            "!=": actual != value,
            "=~": re.fullmatch(value, actual) is not None,
            "!~": re.fullmatch(value, actual) is None,
        }[op]
        if not ok:
            return False
    return True


def inhibited(rules: list[dict], source: dict, target: dict) -> bool:
    return any(
        matches(rule["source_matchers"], source)
        and matches(rule["target_matchers"], target)
        and all(source.get(label, "") == target.get(label, "") for label in rule.get("equal", []))
        for rule in rules
    )


def alert(alertname: str, severity: str, instance: str = "web1:8000", env: str = "production") -> dict:
    return {"alertname": alertname, "severity": severity, "instance": instance, "env": env}


@pytest.fixture(params=ENVIRONMENTS)
def inhibit_rules(rendered, request):
    rules = rendered[request.param].config["inhibit_rules"]
    for rule in rules:
        assert set(rule) <= {"source_matchers", "target_matchers", "equal"}, (
            "use matchers, not match/match_re"
        )
    return rules


# The alerts saying a web host is down: WebsiteDown without a frontend (per host), WebHostDown and
# BackendDown behind one.
HOST_DOWN = [("WebsiteDown", "critical"), ("WebHostDown", "warning"), ("BackendDown", "warning")]


@pytest.mark.parametrize("down", HOST_DOWN, ids=lambda d: d[0])
@pytest.mark.parametrize("symptom", ["HighRequestRate", "HighErrorRate", "HighLatency"])
def test_a_down_web_host_silences_its_own_symptoms(inhibit_rules, down, symptom):
    assert inhibited(inhibit_rules, alert(*down), alert(symptom, "warning"))
    assert inhibited(inhibit_rules, alert(*down), alert(symptom, "critical"))


@pytest.mark.parametrize("down", HOST_DOWN, ids=lambda d: d[0])
@pytest.mark.parametrize("symptom", ["HighRequestRate", "HighErrorRate", "HighLatency"])
def test_a_down_web_host_does_not_silence_other_hosts_or_environments(inhibit_rules, down, symptom):
    source = alert(*down, instance="web1:8000")
    assert not inhibited(inhibit_rules, source, alert(symptom, "warning", instance="web2:8000"))
    assert not inhibited(inhibit_rules, source, alert(symptom, "warning", env="testing"))


@pytest.mark.parametrize("target", ["WebHostDown", "TargetDown"])
def test_backend_down_silences_the_same_web_hosts_probe_and_scrape(inhibit_rules, target):
    backend_down = alert("BackendDown", "warning", instance="web1:5566")
    assert inhibited(inhibit_rules, backend_down, alert(target, "warning", instance="web1:5566"))
    assert not inhibited(inhibit_rules, backend_down, alert(target, "warning", instance="web2:5566"))
    assert not inhibited(
        inhibit_rules, backend_down, alert(target, "warning", instance="web1:5566", env="testing")
    )


def test_nothing_silences_backend_down_or_the_site_probe(inhibit_rules):
    """BackendDown is the one message of a host out of the pool; the public URL's WebsiteDown pages."""
    sources = [
        alert(name, sev, instance=i)
        for name, sev in [*HOST_DOWN, ("TargetDown", "warning")]
        for i in ("web1:5566", "https://conduit.example.org/health")
    ]
    for target in (
        alert("BackendDown", "warning", instance="web1:5566"),
        alert("WebsiteDown", "critical", instance="https://conduit.example.org/health"),
    ):
        for source in sources:
            if source != target:
                assert not inhibited(inhibit_rules, source, target), f"{source} silences {target}"


def test_a_critical_alert_silences_its_own_warning(inhibit_rules):
    assert inhibited(
        inhibit_rules, alert("NodeDiskSpaceLow", "critical"), alert("NodeDiskSpaceLow", "warning")
    )
    assert not inhibited(
        inhibit_rules, alert("NodeDiskSpaceLow", "critical"), alert("NodeMemoryLow", "warning")
    )


@pytest.mark.parametrize(
    "alertname",
    ["WebsiteDown", "TargetDown", "NodeDiskSpaceLow", "NodeMemoryLow", "PostgresDown", "BackupRestoreFailed"],
)
def test_nothing_silences_a_critical_alert_or_a_down_site(inhibit_rules, alertname):
    candidates = [
        alert(name, sev)
        for name in ("WebsiteDown", "HighRequestRate", "TargetDown", "PostgresDown", "BackupTooOld")
        for sev in ("critical", "warning")
    ]
    target = alert(alertname, "critical")
    for source in candidates:
        if source != target:
            assert not inhibited(inhibit_rules, source, target), f"{source} silences {target}"
