"""The prometheus role's preflight refuses the new inputs' malformed values by kind, naming the variable and
the value, before anything changes (one ansible-playbook run, one inventory host per case, as
tests/preflight does for every role); and playbooks/preflight.yml names the inventory knob a bad retention
size comes from.

The retention size is a size with its unit (Prometheus' --storage.tsdb.retention.size): a share of the
disk such as "80%" is refused, as are lower-case units and spaces."""

import pytest
from controller_helpers import (
    Outcome,
    demo_monitoring_preflight,
    knobs,
    role_preflight_cases,
)

REMOTE_WRITE_URL = "https://longterm.example.org:8428/api/v1/write"


# case -> (bad inputs, the variable named, the refused value as the message shows it)
BAD = {
    "retention-size-percentage": ({"prometheus_retention_size": "80%"}, "prometheus_retention_size", '"80%"'),
    "retention-size-with-space": (
        {"prometheus_retention_size": "8 GB"},
        "prometheus_retention_size",
        '"8 GB"',
    ),
    "retention-size-without-unit": (
        {"prometheus_retention_size": "8000000000"},
        "prometheus_retention_size",
        '"8000000000"',
    ),
    "remote-write-url-without-scheme": (
        {"prometheus_remote_write": [{"url": REMOTE_WRITE_URL}, {"url": "vm.example.org:8428/api/v1/write"}]},
        "prometheus_remote_write (url)",
        '"vm.example.org:8428/api/v1/write"',
    ),
    "alert-drop-label-with-dash": (
        {"prometheus_alert_drop_labels": ["re-plica"]},
        "prometheus_alert_drop_labels",
        '"re-plica"',
    ),
    "remote-write-drop-label-with-space": (
        {"prometheus_remote_write_drop_labels": ["replica label"]},
        "prometheus_remote_write_drop_labels",
        '"replica label"',
    ),
    "probe-interval-with-space": (
        {"prometheus_blackbox_scrape_interval": "5 s"},
        "prometheus_blackbox_scrape_interval",
        '"5 s"',
    ),
    "web-evaluation-interval-with-space": (
        {"prometheus_alert_web_evaluation_interval": "2 s"},
        "prometheus_alert_web_evaluation_interval",
        '"2 s"',
    ),
    # One failed probe would hold WebsiteDown's whole `for` (its sample lasts the interval).
    "probe-interval-as-long-as-website-down-for": (
        {"prometheus_blackbox_scrape_interval": "1m"},
        "prometheus_blackbox_scrape_interval",
        "so that one failed probe never fires WebsiteDown (got 1m and 1m)",
    ),
    "probes-at-a-scrape-interval-longer-than-website-down-for": (
        {"prometheus_scrape_interval": "2m"},
        "prometheus_scrape_interval",
        "must be shorter than prometheus_alert_website_down_for",
    ),
    # The group's shortest `for` is HighRequestRate's here.
    "web-evaluation-interval-above-a-for-of-its-group": (
        {
            "prometheus_alert_web_evaluation_interval": "90s",
            "prometheus_alert_website_down_for": "2m",
            "prometheus_alert_backend_down_for": "2m",
        },
        "prometheus_alert_web_evaluation_interval",
        "the web alerts (rule group lookout-web), prometheus_alert_high_request_rate_for (got 90s and 1m)",
    ),
    "web-alerts-at-a-global-evaluation-interval-above-their-for": (
        {"prometheus_evaluation_interval": "5m"},
        "prometheus_evaluation_interval",
        "prometheus_alert_website_down_for (got 5m and 1m)",
    ),
    "cluster-size-zero": (
        {"prometheus_alert_alertmanager_cluster_size": 0},
        "prometheus_alert_alertmanager_cluster_size",
        '"0"',
    ),
    "notifications-for-in-words": (
        {"prometheus_alert_notifications_for": "two minutes"},
        "prometheus_alert_notifications_for",
        '"two minutes"',
    ),
    "tsdb-disk-for-decimal": (
        {"prometheus_alert_tsdb_disk_for": "0.5h"},
        "prometheus_alert_tsdb_disk_for",
        '"0.5h"',
    ),
    "tsdb-fill-hours-zero": (
        {"prometheus_alert_tsdb_disk_fill_hours": 0},
        "prometheus_alert_tsdb_disk_fill_hours",
        '"0"',
    ),
}
GOOD = {
    "prometheus_retention_size": "1.5GiB",
    "prometheus_remote_write": [
        {"url": REMOTE_WRITE_URL, "basic_auth": {"username": "lookout", "password": "a-password"}},
        {"url": "http://[::1]:8428/api/v1/write", "ca_file": "/usr/local/share/ca-certificates/lookout.crt"},
    ],
    "prometheus_alert_drop_labels": ["replica"],
    "prometheus_remote_write_drop_labels": ["replica", "__tmp_replica"],
    "prometheus_blackbox_scrape_interval": "5s",
    "prometheus_alert_web_evaluation_interval": "2s",
    "prometheus_alert_alertmanager_cluster_size": 3,
    "prometheus_alert_tsdb_disk_fill_hours": 6,
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Outcome]:
    hosts = {"defaults": {}, "good": GOOD} | {case: inputs for case, (inputs, _, _) in BAD.items()}
    return role_preflight_cases("prometheus", tmp_path_factory.mktemp("prometheus-preflight"), hosts)


@pytest.mark.parametrize("host", ["defaults", "good"])
def test_good_values_pass(results, host):
    assert results[host].failures == (), results[host].failure
    assert results[host].changed == 0


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_value_is_refused_naming_the_variable(results, case):
    inputs, variable, shown = BAD[case]
    outcome = results[case]
    assert outcome.failures, f"accepted {inputs}"
    assert f"prometheus: {variable}" in outcome.failure, outcome.failure
    assert shown in outcome.failure, outcome.failure
    assert outcome.changed == 0


def test_a_retention_size_that_is_not_a_size_names_the_knob(tmp_path):
    """playbooks/preflight.yml with the demo's knobs but lookout_retention_size "80%" (a share of the disk):
    refused before anything changes, naming the role input and the knob."""
    outcome = demo_monitoring_preflight(tmp_path, lookout_retention_size="80%")
    assert outcome.changed == 0
    failure = outcome.failure
    assert "prometheus: prometheus_retention_size (from lookout_retention_size) must be a size" in failure, (
        failure
    )
    assert '(got "80%")' in failure, failure


def test_a_probe_interval_as_long_as_website_down_for_names_the_knobs(tmp_path):
    """playbooks/preflight.yml with the demo's knobs but lookout_probe_scrape_interval as long as
    lookout_alert_website_down_for: refused before anything changes, naming both inputs and their knobs."""
    probe = knobs("demo")["lookout_alert_website_down_for"]
    outcome = demo_monitoring_preflight(tmp_path, lookout_probe_scrape_interval=probe)
    assert outcome.changed == 0
    assert (
        "prometheus: prometheus_blackbox_scrape_interval (from lookout_probe_scrape_interval) must be shorter"
        " than prometheus_alert_website_down_for (from lookout_alert_website_down_for)"
    ) in outcome.failure, outcome.failure
