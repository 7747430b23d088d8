"""Every role that serves TLS refuses bad certificate inputs in its preflight, naming its own variable, before
anything changes (one ansible-playbook run for every role, one inventory host per role and case, as
tests/preflight does): a certificate without its key, a key without its certificate, a key of another
certificate, a certificate that is no longer valid, and one without the CA that signed it (what clients
verify against). A valid certificate with its key and CA, and TLS from the internal CA (no certificate
given), pass. HAProxy's metrics endpoint names its inputs haproxy_metrics_tls_*. The TLS switches that
depend on another are refused alone, naming both: HAProxy's backend TLS without its metrics TLS (whose CA
verifies the servers) or with a server named by an IP address, Alertmanager's gossip TLS without its TLS."""

import pytest
from controller_helpers import roles_preflight_cases, self_signed_pem

ROLES = (
    "prometheus",
    "alertmanager",
    "blackbox_exporter",
    "node_exporter",
    "postgres_exporter",
    "victoriametrics",
    "grafana",
    "postgresql",
    "conduit",
    "haproxy",
)
# The prefix of a role's TLS inputs, where it is not the role's name.
PREFIX = {"haproxy": "haproxy_metrics"}
BACKENDS = [{"name": "web1", "address": "127.0.0.1", "port": 5566, "tls_name": "web1"}]
# Inputs a role's preflight needs besides TLS (its defaults leave them empty on purpose).
REQUIRED = {
    "grafana": {"grafana_admin_password": "a-password"},
    "alertmanager": {
        "alertmanager_slack_channels": {"critical": "#alerts", "warning": "#warnings"},
        "alertmanager_slack_api_url": "https://hooks.slack.example.org/services/test",
    },
    "postgresql": {
        "postgresql_version": "15",
        "postgresql_users": [{"name": "conduit", "password": "a-long-enough-password"}],
        "postgresql_databases": [{"name": "conduit", "owner": "conduit"}],
    },
    "conduit": {"conduit_version": "1.0.0", "conduit_secret_key": "a-secret-key-of-at-least-32-characters!"},
    "haproxy": {"haproxy_backend_servers": BACKENDS},
}


VALID = self_signed_pem(-1, 30)
EXPIRED = self_signed_pem(-30, -1)
OTHER = self_signed_pem(-1, 30)


def _cases(role: str) -> dict[str, tuple[dict, str]]:
    """case -> (TLS inputs, what the message must say; empty: the case passes)."""
    prefix = PREFIX.get(role, role)
    certificate, key, ca = f"{prefix}_tls_certificate", f"{prefix}_tls_key", f"{prefix}_tls_ca_certificate"
    together = f"{certificate} and {key} come together"
    return {
        "internal-ca": ({}, ""),
        # Self-signed: the certificate is its own CA.
        "given-valid": ({certificate: VALID[0], key: VALID[1], ca: VALID[0]}, ""),
        "certificate-without-its-ca": (
            {certificate: VALID[0], key: VALID[1]},
            f"{certificate} comes with {ca}",
        ),
        "certificate-without-key": ({certificate: VALID[0]}, together),
        "key-without-certificate": ({key: VALID[1]}, together),
        "key-of-another-certificate": (
            {certificate: VALID[0], key: OTHER[1]},
            f"{key} is not the key of {certificate}",
        ),
        "expired": ({certificate: EXPIRED[0], key: EXPIRED[1]}, f"{certificate} is not valid now"),
    }


def _host(role: str, case: str) -> str:
    """A case's inventory host: a DNS name, as the roles' default TLS names carry it."""
    return f"{role.replace('_', '-')}-{case}"


@pytest.fixture(scope="module", params=ROLES)
def role_results(request, outcomes):
    role = request.param
    return role, {case: outcomes[_host(role, case)] for case in _cases(role)}


@pytest.mark.parametrize(
    "case",
    [
        "internal-ca",
        "given-valid",
        "certificate-without-its-ca",
        "certificate-without-key",
        "key-without-certificate",
        "key-of-another-certificate",
        "expired",
    ],
)
def test_certificate_inputs(role_results, case):
    role, results = role_results
    message = _cases(role)[case][1]
    outcome = results[case]
    assert outcome.changed == 0
    if not message:
        assert outcome.failures == (), outcome.failure
    else:
        assert outcome.failures, f"{role}: accepted {case}"
        assert message in outcome.failure, outcome.failure
    # The secrets are never shown.
    assert "PRIVATE KEY" not in outcome.failure


DEPENDENT = {
    "haproxy-backend-without-metrics-tls": (
        "haproxy",
        {"haproxy_backend_tls_enabled": True, "haproxy_backend_servers": BACKENDS},
        "haproxy_backend_tls_enabled needs haproxy_metrics_tls_enabled",
    ),
    "haproxy-backend-named-by-address": (
        "haproxy",
        {
            "haproxy_backend_tls_enabled": True,
            "haproxy_metrics_tls_enabled": True,
            "haproxy_backend_servers": [{"name": "web1", "address": "127.0.0.1", "port": 5566}],
        },
        "every server of haproxy_backend_servers a DNS name its certificate carries (tls_name, else address;",
    ),
    "haproxy-backend-named": (
        "haproxy",
        {
            "haproxy_backend_tls_enabled": True,
            "haproxy_metrics_tls_enabled": True,
            "haproxy_backend_servers": BACKENDS,
        },
        "",
    ),
    "alertmanager-gossip-without-tls": (
        "alertmanager",
        {"alertmanager_cluster_tls_enabled": True, **REQUIRED["alertmanager"]},
        "alertmanager_cluster_tls_enabled needs alertmanager_tls_enabled",
    ),
    "alertmanager-gossip-with-tls": (
        "alertmanager",
        {
            "alertmanager_cluster_tls_enabled": True,
            "alertmanager_tls_enabled": True,
            **REQUIRED["alertmanager"],
        },
        "",
    ),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every role's certificate cases and the dependent switches (host <case>): one run."""
    cases = {
        _host(role, case): (
            role,
            {f"{PREFIX.get(role, role)}_tls_enabled": True, **REQUIRED.get(role, {}), **inputs},
        )
        for role in ROLES
        for case, (inputs, _) in _cases(role).items()
    }
    cases |= {case: (role, inputs) for case, (role, inputs, _) in DEPENDENT.items()}
    return roles_preflight_cases(tmp_path_factory.mktemp("tls-preflight"), cases)


@pytest.fixture(scope="module")
def dependent_results(outcomes):
    return {case: outcomes[case] for case in DEPENDENT}


@pytest.mark.parametrize("case", sorted(DEPENDENT))
def test_tls_switches_that_need_another(dependent_results, case):
    message = DEPENDENT[case][2]
    outcome = dependent_results[case]
    assert outcome.changed == 0
    if not message:
        assert outcome.failures == (), outcome.failure
    else:
        assert message in outcome.failure, outcome.failure
