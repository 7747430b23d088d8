"""Every role's preflight refuses a malformed value where it would end up on a daemon's command line, in a
unit or in a configuration (durations, sizes, addresses, ports, URLs, counts), before anything changes,
naming the variable and the value; the role's defaults and unusual but valid values pass. One
ansible-playbook run on the controller for every role, one inventory host per role and case (HAProxy's cases
are in tests/haproxy)."""

from dataclasses import dataclass

import pytest
from controller_helpers import PREFLIGHT_REQUIRED, ROOT, Outcome, roles_preflight_cases


@dataclass(frozen=True)
class Case:
    inputs: dict
    variable: str
    # The refused value as the message shows it (JSON).
    shown: str


# Per role: the inputs every host needs (shared with tests/preflight/test_renamed_inputs.py), unusual but
# valid values, and the bad cases.
REQUIRED = PREFLIGHT_REQUIRED
VARIANTS = {
    "prometheus": {
        "prometheus_retention": "1y2w",
        "prometheus_retention_size": "1.5GB",
        "prometheus_listen_address": "[::]",
        "prometheus_external_url": "https://monitor.example.org/prometheus/",
        "prometheus_scrape_timeout": "500ms",
        "prometheus_blackbox_address": "[::1]:9115",
        "prometheus_alert_website_down_for": "1m30s",
    },
    "alertmanager": {
        "alertmanager_listen_address": "[::]",
        "alertmanager_port": 19093,
        "alertmanager_cluster_listen_address": "[::]",
        "alertmanager_cluster_port": 19094,
        "alertmanager_web_external_url": "http://192.0.2.21:9093/alertmanager",
        "alertmanager_data_retention": "1.5h",
        "alertmanager_group_wait": "0s",
    },
    "blackbox_exporter": {
        "blackbox_exporter_listen_address": "",
    },
    "grafana": {
        "grafana_listen_address": "::",
        "grafana_root_url": "https://grafana.example.org/",
        "grafana_prometheus_datasources": [{"name": "Prometheus", "url": "http://[::1]:9090"}],
    },
    "node_exporter": {
        "node_exporter_listen_address": "192.0.2.11",
        "node_exporter_allowed_sources": ["192.0.2.21", "10.0.0.0/8", "fe80::/10", "localhost"],
    },
    "postgres_exporter": {"postgres_exporter_allowed_sources": ["198.51.100.21", "::1"]},
    "conduit": {
        "conduit_listen_address": "web1.example.org",
        "conduit_forwarded_allow_ips": ["lb1", "192.0.2.51", "2001:db8::51"],
        "conduit_workers": 0,
        "conduit_password_hash": "pbkdf2:sha512:210000",
        "conduit_login_account_limit": 1,
        "conduit_login_window": 30,
    },
    "postgresql": {
        "postgresql_listen_addresses": ["*"],
        "postgresql_shared_buffers": 16384,
        "postgresql_work_mem": "64kB",
    },
    "victoriametrics": {
        "victoriametrics_listen_address": "[::]",
        "victoriametrics_storage_path": "/srv/victoria-metrics",
        "victoriametrics_retention_period": "1y2w",
        "victoriametrics_dedup_min_scrape_interval": "1m30s",
        "victoriametrics_allowed_sources": ["192.0.2.21", "192.0.2.22", "fe80::/10"],
        "victoriametrics_basic_auth_user": "lookout",
        "victoriametrics_basic_auth_password": "p\"w$x\\y`z 'q",
    },
    "k6": {
        "k6_target_urls": ["https://conduit.example.org", "http://192.0.2.11:5566"],
        "k6_prometheus_rw_url": "http://[::1]:9090/api/v1/write",
        "k6_request_timeout": "1m30s",
    },
}
BAD = {
    "prometheus": {
        # The issue's example: Prometheus' command line refuses it and Prometheus does not start.
        "retention-in-words": Case({"prometheus_retention": "30 days"}, "prometheus_retention", '"30 days"'),
        "retention-empty": Case({"prometheus_retention": ""}, "prometheus_retention", '""'),
        "retention-size-lower-case": Case(
            {"prometheus_retention_size": "20gb"}, "prometheus_retention_size", '"20gb"'
        ),
        "listen-address-with-scheme": Case(
            {"prometheus_listen_address": "http://0.0.0.0"}, "prometheus_listen_address", '"http://0.0.0.0"'
        ),
        "listen-address-bare-ipv6": Case(
            {"prometheus_listen_address": "::"}, "prometheus_listen_address", '"::"'
        ),
        "scrape-interval-without-unit": Case(
            {"prometheus_scrape_interval": "15"}, "prometheus_scrape_interval", '"15"'
        ),
        "evaluation-interval-units-out-of-order": Case(
            {"prometheus_evaluation_interval": "30s1m"}, "prometheus_evaluation_interval", '"30s1m"'
        ),
        "for-window-decimal": Case(
            {"prometheus_alert_website_down_for": "1.5m"}, "prometheus_alert_website_down_for", '"1.5m"'
        ),
        "external-url-without-scheme": Case(
            {"prometheus_external_url": "monitor.example.org"},
            "prometheus_external_url",
            '"monitor.example.org"',
        ),
        "blackbox-address-without-port": Case(
            {"prometheus_blackbox_address": "127.0.0.1"}, "prometheus_blackbox_address", '"127.0.0.1"'
        ),
    },
    "alertmanager": {
        # --data.retention is a Go duration: days are refused there.
        "retention-in-days": Case(
            {"alertmanager_data_retention": "5d"}, "alertmanager_data_retention", '"5d"'
        ),
        "group-wait-with-space": Case(
            {"alertmanager_group_wait": "30 s"}, "alertmanager_group_wait", '"30 s"'
        ),
        "repeat-interval-in-words": Case(
            {"alertmanager_repeat_interval": "4 hours"}, "alertmanager_repeat_interval", '"4 hours"'
        ),
        # The host:port form of earlier releases (tests/preflight/test_listen_address_split.py).
        "listen-address-with-port": Case(
            {"alertmanager_listen_address": "0.0.0.0:9093"},
            "alertmanager_listen_address",
            '"0.0.0.0:9093"',
        ),
        "listen-address-bare-ipv6": Case(
            {"alertmanager_listen_address": "::"}, "alertmanager_listen_address", '"::"'
        ),
        "port-out-of-range": Case({"alertmanager_port": 99999}, "alertmanager_port", '"99999"'),
        "cluster-address-with-scheme": Case(
            {"alertmanager_cluster_listen_address": "http://0.0.0.0"},
            "alertmanager_cluster_listen_address",
            '"http://0.0.0.0"',
        ),
        "cluster-port-out-of-range": Case(
            {"alertmanager_cluster_port": 0}, "alertmanager_cluster_port", '"0"'
        ),
        "external-url-without-scheme": Case(
            {"alertmanager_web_external_url": "alerts.example.org"},
            "alertmanager_web_external_url",
            '"alerts.example.org"',
        ),
    },
    "blackbox_exporter": {
        "listen-address-with-port": Case(
            {"blackbox_exporter_listen_address": "127.0.0.1:9115"},
            "blackbox_exporter_listen_address",
            '"127.0.0.1:9115"',
        ),
        "listen-address-bare-ipv6": Case(
            {"blackbox_exporter_listen_address": "::"}, "blackbox_exporter_listen_address", '"::"'
        ),
    },
    "grafana": {
        "listen-address-with-scheme": Case(
            {"grafana_listen_address": "http://0.0.0.0"}, "grafana_listen_address", '"http://0.0.0.0"'
        ),
        "port-out-of-range": Case({"grafana_port": 70000}, "grafana_port", '"70000"'),
        "scrape-interval-in-words": Case(
            {"grafana_prometheus_scrape_interval": "15 seconds"},
            "grafana_prometheus_scrape_interval",
            '"15 seconds"',
        ),
        "root-url-without-scheme": Case(
            {"grafana_root_url": "grafana.example.org/"}, "grafana_root_url", '"grafana.example.org/"'
        ),
        "datasource-url-without-scheme": Case(
            {"grafana_prometheus_datasources": [{"name": "Prometheus", "url": "monitor1:9090"}]},
            "grafana_prometheus_datasources (url)",
            '"monitor1:9090"',
        ),
    },
    "node_exporter": {
        "listen-address-with-port": Case(
            {"node_exporter_listen_address": "0.0.0.0:9100"}, "node_exporter_listen_address", '"0.0.0.0:9100"'
        ),
        "source-prefix-too-long": Case(
            {"node_exporter_allowed_sources": ["192.0.2.21", "10.0.0.0/33"]},
            "node_exporter_allowed_sources",
            '"10.0.0.0/33"',
        ),
        "source-not-an-address": Case(
            {"node_exporter_allowed_sources": ["monitoring hosts"]},
            "node_exporter_allowed_sources",
            '"monitoring hosts"',
        ),
    },
    "postgres_exporter": {
        "listen-address-with-port": Case(
            {"postgres_exporter_listen_address": "0.0.0.0:9187"},
            "postgres_exporter_listen_address",
            '"0.0.0.0:9187"',
        ),
        "sources-in-one-string": Case(
            {"postgres_exporter_allowed_sources": ["10.0.0.0/8,10.1.0.0/16"]},
            "postgres_exporter_allowed_sources",
            '"10.0.0.0/8,10.1.0.0/16"',
        ),
    },
    "conduit": {
        "listen-address-with-scheme": Case(
            {"conduit_listen_address": "http://0.0.0.0"}, "conduit_listen_address", '"http://0.0.0.0"'
        ),
        "workers-in-words": Case({"conduit_workers": "four"}, "conduit_workers", '"four"'),
        "database-port-zero": Case({"conduit_database_port": 0}, "conduit_database_port", '"0"'),
        "database-host-with-port": Case(
            {"conduit_database_host": "db1:5432"}, "conduit_database_host", '"db1:5432"'
        ),
        "forwarded-proxy-with-port": Case(
            {"conduit_forwarded_allow_ips": ["192.0.2.51", "192.0.2.52:443"]},
            "conduit_forwarded_allow_ips",
            '"192.0.2.52:443"',
        ),
        "password-hash-unknown-method": Case(
            {"conduit_password_hash": "bcrypt:12"}, "conduit_password_hash", '"bcrypt:12"'
        ),
        # The app's test suite's hashing, refused outside the demo.
        "password-hash-below-the-floor": Case(
            {"conduit_password_hash": "pbkdf2:sha256:1000"}, "conduit_password_hash", '"pbkdf2:sha256:1000"'
        ),
        "login-limit-zero": Case({"conduit_login_account_limit": 0}, "conduit_login_account_limit", '"0"'),
        "login-window-in-words": Case({"conduit_login_window": "15m"}, "conduit_login_window", '"15m"'),
    },
    "postgresql": {
        "shared-buffers-lower-case-unit": Case(
            {"postgresql_shared_buffers": "128mb"}, "postgresql_shared_buffers", '"128mb"'
        ),
        "cache-size-decimal": Case(
            {"postgresql_effective_cache_size": "1.5GB"}, "postgresql_effective_cache_size", '"1.5GB"'
        ),
        "max-connections-zero": Case({"postgresql_max_connections": 0}, "postgresql_max_connections", '"0"'),
        "listen-address-with-scheme": Case(
            {"postgresql_listen_addresses": ["localhost", "http://db1"]},
            "postgresql_listen_addresses",
            '"http://db1"',
        ),
    },
    "victoriametrics": {
        # VictoriaMetrics refuses m (minutes or months?) at start.
        "retention-in-minutes-or-months": Case(
            {"victoriametrics_retention_period": "30m"}, "victoriametrics_retention_period", '"30m"'
        ),
        "retention-in-words": Case(
            {"victoriametrics_retention_period": "30 days"}, "victoriametrics_retention_period", '"30 days"'
        ),
        # Parsed, but VictoriaMetrics refuses to start with less than a day.
        "retention-under-a-day": Case(
            {"victoriametrics_retention_period": "23h"}, "victoriametrics_retention_period", '"23h"'
        ),
        "retention-zero-months": Case(
            {"victoriametrics_retention_period": "0"}, "victoriametrics_retention_period", '"0"'
        ),
        # A Go duration: days are refused there.
        "dedup-interval-in-days": Case(
            {"victoriametrics_dedup_min_scrape_interval": "1d"},
            "victoriametrics_dedup_min_scrape_interval",
            '"1d"',
        ),
        "port-out-of-range": Case({"victoriametrics_port": 70000}, "victoriametrics_port", '"70000"'),
        "listen-address-with-port": Case(
            {"victoriametrics_listen_address": "0.0.0.0:8428"},
            "victoriametrics_listen_address",
            '"0.0.0.0:8428"',
        ),
        "storage-path-relative": Case(
            {"victoriametrics_storage_path": "victoria-metrics-data"},
            "victoriametrics_storage_path",
            '"victoria-metrics-data"',
        ),
        "storage-path-with-space": Case(
            {"victoriametrics_storage_path": "/srv/long term"},
            "victoriametrics_storage_path",
            '"/srv/long term"',
        ),
        "source-not-an-address": Case(
            {"victoriametrics_allowed_sources": ["monitor1"]}, "victoriametrics_allowed_sources", '"monitor1"'
        ),
        "password-without-user": Case(
            {"victoriametrics_basic_auth_password": "secret"}, "victoriametrics_basic_auth_user", '""'
        ),
        "user-with-colon": Case(
            {"victoriametrics_basic_auth_user": "look:out", "victoriametrics_basic_auth_password": "secret"},
            "victoriametrics_basic_auth_user",
            '"look:out"',
        ),
    },
    "k6": {
        "target-without-host": Case({"k6_target_urls": ["https://"]}, "k6_target_urls", '"https://"'),
        "remote-write-without-scheme": Case(
            {"k6_prometheus_rw_url": "monitor1:9090/api/v1/write"},
            "k6_prometheus_rw_url",
            '"monitor1:9090/api/v1/write"',
        ),
        "request-timeout-in-words": Case(
            {"k6_request_timeout": "10 seconds"}, "k6_request_timeout", '"10 seconds"'
        ),
    },
}
ROLES = sorted(BAD)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict[str, Outcome]]:
    """Per role, its cases' outcomes, from one run for every role (a host per role and case)."""
    hosts = {}
    for role in ROLES:
        required = REQUIRED.get(role, {})
        hosts[role] = {"defaults": required, "variants": {**required, **VARIANTS[role]}}
        hosts[role] |= {case: {**required, **bad.inputs} for case, bad in BAD[role].items()}
    cases = {f"{role}-{case}": (role, inputs) for role in ROLES for case, inputs in hosts[role].items()}
    outcomes = roles_preflight_cases(tmp_path_factory.mktemp("preflight-values"), cases)
    return {role: {case: outcomes[f"{role}-{case}"] for case in hosts[role]} for role in ROLES}


def test_every_role_with_a_preflight_has_cases():
    """Each role's bad values are tried here, or in its own folder: haproxy and firewall (tests/<role>)."""
    roles = {path.parts[-3] for path in (ROOT / "roles").glob("*/tasks/preflight.yml")}
    assert roles - {"common", "haproxy", "firewall"} == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("host", ["defaults", "variants"])
def test_good_values_pass(results, role, host):
    outcome = results[role][host]
    assert outcome.failures == (), outcome.failure
    assert outcome.changed == 0


@pytest.mark.parametrize(
    ("role", "case"), [(role, case) for role in ROLES for case in BAD[role]], ids=lambda value: value
)
def test_bad_value_is_refused_naming_the_variable(results, role, case):
    bad = BAD[role][case]
    outcome = results[role][case]
    assert outcome.failures, f"{role} accepted {bad.inputs}"
    assert f"{role}: {bad.variable}" in outcome.failure, outcome.failure
    assert bad.shown in outcome.failure, outcome.failure
    assert outcome.changed == 0
