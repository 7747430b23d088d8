"""The command line and the environment file the victoriametrics role gives VictoriaMetrics (its render entry
on the controller): the flags from the inputs, nothing secret among them, the credentials only in the
environment file and exactly as given (quoting included); every environment's knobs wired: its retention,
deduplication at its scrape interval, its listen address, credentials exactly when lookout_auth_enabled."""

import pytest
from controller_helpers import ENVIRONMENTS, knobs
from victoriametrics_helpers import BINARY, render

PASSWORD = "p\"w$x\\y`z 'q"
MONITORING_PASSWORD = "test-monitoring-password"
HOSTS = {
    "defaults": {},
    "inputs": {
        "victoriametrics_listen_address": "127.0.0.1",
        "victoriametrics_port": 18428,
        "victoriametrics_storage_path": "/srv/victoria-metrics",
        "victoriametrics_retention_period": "2w3d",
        "victoriametrics_dedup_min_scrape_interval": "15s",
        "victoriametrics_extra_flags": ["-search.maxQueryDuration=1m"],
        "victoriametrics_basic_auth_user": "lookout",
        "victoriametrics_basic_auth_password": PASSWORD,
    },
    "every-address": {"victoriametrics_listen_address": ""},
    "ipv6": {"victoriametrics_listen_address": "[::]"},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return render(tmp_path_factory.mktemp("victoriametrics-render"), HOSTS)


@pytest.fixture(scope="module")
def wired(tmp_path_factory):
    hosts = {env: {**knobs(env), "vault_monitoring_password": MONITORING_PASSWORD} for env in ENVIRONMENTS}
    return render(tmp_path_factory.mktemp("victoriametrics-wired"), hosts, wired=True)


def test_every_input_set_renders(rendered):
    for name, result in rendered.items():
        assert not result.failure, f"{name}: {result.failure}"


def test_the_defaults_keep_a_month_without_deduplication_or_auth(rendered):
    assert rendered["defaults"].flags == [
        str(BINARY),
        "-envflag.enable",
        "-storageDataPath=/var/lib/victoria-metrics",
        "-httpListenAddr=0.0.0.0:8428",
        "-retentionPeriod=30d",
    ]
    assert rendered["defaults"].environment == {}


def test_the_inputs_become_the_flags(rendered):
    assert rendered["inputs"].flags == [
        str(BINARY),
        "-envflag.enable",
        "-storageDataPath=/srv/victoria-metrics",
        "-httpListenAddr=127.0.0.1:18428",
        "-retentionPeriod=2w3d",
        "-dedup.minScrapeInterval=15s",
        "-search.maxQueryDuration=1m",
    ]


@pytest.mark.parametrize(
    ("host", "flag"), [("every-address", "-httpListenAddr=:8428"), ("ipv6", "-httpListenAddr=[::]:8428")]
)
def test_the_listen_address_and_port_join(rendered, host, flag):
    assert flag in rendered[host].flags


def test_the_credentials_are_in_the_environment_file_only(rendered):
    result = rendered["inputs"]
    # -envflag.enable reads a flag's value from the variable named after it, dots as underscores.
    assert result.environment == {
        "httpAuth_username": "lookout",
        "httpAuth_password": PASSWORD,
        "pprofAuthKey": PASSWORD,
    }
    assert not [flag for flag in result.flags if "httpAuth" in flag or "AuthKey" in flag or PASSWORD in flag]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_is_wired_from_its_knobs(wired, env):
    result, knob = wired[env], knobs(env)
    assert not result.failure, result.failure
    assert f"-retentionPeriod={knob['lookout_longterm_retention']}" in result.flags
    # The replicas' samples of one series within one scrape interval count once.
    assert f"-dedup.minScrapeInterval={knob['lookout_scrape_interval']}" in result.flags
    assert f"-httpListenAddr={knob['lookout_monitoring_listen_address']}:8428" in result.flags
    if knob["lookout_auth_enabled"]:
        assert result.environment["httpAuth_username"] == knob["lookout_monitoring_user"]
        assert result.environment["httpAuth_password"] == MONITORING_PASSWORD
    else:
        assert result.environment == {}
