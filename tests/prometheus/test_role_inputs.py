"""A wrong type, an unknown choice or a missing required input stops a role at its first task (the argument
spec check, on the controller), naming the variable, before anything on a host can change. One playbook on
the controller, in check mode, applies every bad input in its own block and records how each failed.
Inputs a type cannot judge (basic auth required when enabled, password length, a port's range, an archive's
pin) fail at the role's preflight check instead, still before the host changes and naming the variable,
never showing a password."""

import json

import pytest
import yaml
from controller_helpers import ansible_playbook, local_host

# (role, entry point, bad inputs, the variable the failure must name)
CASES = [
    ("node_exporter", "main", {"node_exporter_port": "ninety"}, "node_exporter_port"),
    ("node_exporter", "main", {"node_exporter_install_method": "tarball"}, "node_exporter_install_method"),
    ("node_exporter", "main", {"node_exporter_allowed_sources": {"a": 1}}, "node_exporter_allowed_sources"),
    ("prometheus", "main", {"prometheus_install_method": "docker"}, "prometheus_install_method"),
    (
        "prometheus",
        "main",
        {"prometheus_alert_high_request_rate": "fast"},
        "prometheus_alert_high_request_rate",
    ),
    ("prometheus", "main", {"prometheus_web_targets": {"web1": 5566}}, "prometheus_web_targets"),
    ("prometheus", "main", {"prometheus_external_labels": ["env"]}, "prometheus_external_labels"),
    ("prometheus", "render", {}, "prometheus_render_dir"),
    (
        "blackbox_exporter",
        "main",
        {"blackbox_exporter_icmp_enabled": "maybe"},
        "blackbox_exporter_icmp_enabled",
    ),
    (
        "blackbox_exporter",
        "main",
        {"blackbox_exporter_archive_arch": "sparc"},
        "blackbox_exporter_archive_arch",
    ),
    ("blackbox_exporter", "render", {}, "blackbox_exporter_render_dir"),
    (
        "prometheus",
        "main",
        {"prometheus_remote_write": [{"ca_file": "/etc/ssl/certs/ca.pem"}]},
        "prometheus_remote_write",
    ),
    (
        "prometheus",
        "main",
        {"prometheus_alert_alertmanager_cluster_size": "two"},
        "prometheus_alert_alertmanager_cluster_size",
    ),
    ("common", "unit", {"common_unit_name": "x", "common_unit_description": "x"}, "common_unit_exec_start"),
    ("common", "install_archive", {"common_archive_name": "x.tar.gz"}, "common_archive_sha256"),
    (
        "prometheus",
        "main",
        {"prometheus_web_basic_auth_users": ["lookout"]},
        "prometheus_web_basic_auth_users",
    ),
    (
        "common",
        "web_config",
        {"common_web_config_path": "/etc/x-web.yml", "common_web_config_users": {"x": "y"}},
        "common_web_config_group",
    ),
]
# A password in a failure message would leak; these must never appear in the output.
SECRET = "preflight-secret-password"
LONG = "p" * 73
REMOTE_WRITE_URL = "https://longterm.example.org:8428/api/v1/write"
ENABLED = {"prometheus_web_basic_auth_enabled": True}
BLACKBOX_ENABLED = {"blackbox_exporter_web_basic_auth_enabled": True}
PREFLIGHT_CASES = [
    ("prometheus", "main", ENABLED, "prometheus_web_basic_auth_users"),
    (
        "prometheus",
        "main",
        {**ENABLED, "prometheus_web_basic_auth_users": {"lookout": ""}},
        "prometheus_web_basic_auth_users",
    ),
    (
        "prometheus",
        "main",
        {**ENABLED, "prometheus_web_basic_auth_users": {"look out": SECRET}},
        "prometheus_web_basic_auth_users",
    ),
    (
        "prometheus",
        "main",
        {**ENABLED, "prometheus_web_basic_auth_users": {"lookout": LONG}},
        "prometheus_web_basic_auth_users",
    ),
    (
        "prometheus",
        "main",
        {"prometheus_blackbox_basic_auth": {"username": "lookout"}},
        "prometheus_blackbox_basic_auth",
    ),
    (
        "prometheus",
        "main",
        {"prometheus_alertmanager_basic_auth": {"password": SECRET}},
        "prometheus_alertmanager_basic_auth",
    ),
    ("prometheus", "main", {"prometheus_postgres_targets": ["db1"]}, "prometheus_postgres_targets"),
    ("prometheus", "main", {"prometheus_haproxy_targets": ["lb1"]}, "prometheus_haproxy_targets"),
    (
        "prometheus",
        "main",
        {"prometheus_site_urls": ["conduit.example.org/health"]},
        "prometheus_site_urls",
    ),
    (
        "prometheus",
        "main",
        {"prometheus_site_urls": ["https://conduit.example.org/health"], "prometheus_blackbox_address": ""},
        "prometheus_blackbox_address",
    ),
    # Remote write: credentials as a pair, a CA file on the host (the URL's form is in test_preflight_inputs).
    (
        "prometheus",
        "main",
        {"prometheus_remote_write": [{"url": REMOTE_WRITE_URL, "basic_auth": {"username": "lookout"}}]},
        "prometheus_remote_write",
    ),
    (
        "prometheus",
        "main",
        {"prometheus_remote_write": [{"url": REMOTE_WRITE_URL, "basic_auth": {"password": SECRET}}]},
        "prometheus_remote_write",
    ),
    (
        "prometheus",
        "main",
        {"prometheus_remote_write": [{"url": REMOTE_WRITE_URL, "ca_file": "lookout-ca.pem"}]},
        "prometheus_remote_write",
    ),
    ("prometheus", "main", {"prometheus_self_targets": ["monitor1"]}, "prometheus_self_targets"),
    ("blackbox_exporter", "main", BLACKBOX_ENABLED, "blackbox_exporter_web_basic_auth_users"),
    # Values of the right type that the role's own check refuses (a `fail` whose condition is the failure).
    (
        "node_exporter",
        "main",
        {"node_exporter_install_method": "archive", "node_exporter_archive_sha256": "ABC"},
        "node_exporter_archive_sha256",
    ),
    ("node_exporter", "main", {"node_exporter_port": 70000}, "node_exporter_port"),
    (
        "blackbox_exporter",
        "main",
        {**BLACKBOX_ENABLED, "blackbox_exporter_web_basic_auth_users": {"lookout": LONG}},
        "blackbox_exporter_web_basic_auth_users",
    ),
]
# Valid inputs the preflight must let through (its own entry: nothing else of the role runs).
ACCEPTED_CASES = [
    (
        "prometheus",
        "preflight",
        {
            "prometheus_retention_size": "1.5GiB",
            "prometheus_remote_write": [
                {
                    "url": REMOTE_WRITE_URL,
                    "basic_auth": {"username": "lookout", "password": SECRET},
                    "ca_file": "/usr/local/share/ca-certificates/lookout-ca.crt",
                },
                {"url": "http://[::1]:8428/api/v1/write"},
            ],
            "prometheus_alert_drop_labels": ["replica"],
            "prometheus_remote_write_drop_labels": ["replica", "__replica_2"],
            "prometheus_self_targets": ["203.0.113.21:9090", "monitor2:9090"],
            "prometheus_blackbox_scrape_interval": "5s",
            "prometheus_alert_alertmanager_cluster_size": 3,
        },
        "",
    ),
]
ALL_CASES = CASES + PREFLIGHT_CASES + ACCEPTED_CASES


def _case_block(number: int, role: str, entry: str, inputs: dict) -> dict:
    include = {"name": role} if entry == "main" else {"name": role, "tasks_from": entry}
    record = "{{ input_results + [%s] }}"
    return {
        "name": f"Case {number}",
        "block": [
            {"name": "Apply the bad input", "ansible.builtin.include_role": include, "vars": inputs},
            {
                "name": "Record that it was accepted",
                "ansible.builtin.set_fact": {
                    "input_results": record % f"{{'case': {number}, 'accepted': true}}"
                },
            },
        ],
        "rescue": [
            {
                "name": "Record how it failed",
                "ansible.builtin.set_fact": {
                    "input_results": record
                    % (
                        f"{{'case': {number}, 'accepted': false, 'action': ansible_failed_task.action, "
                        "'msg': ansible_failed_result.msg | default('')}"
                    )
                },
            }
        ],
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> list[dict]:
    workdir = tmp_path_factory.mktemp("role-inputs")
    results = workdir / "results.json"
    play = {
        "name": "Apply bad inputs",
        "hosts": "controller",
        "gather_facts": False,
        "vars": {"input_results": []},
        "tasks": [_case_block(i, role, entry, inputs) for i, (role, entry, inputs, _) in enumerate(ALL_CASES)]
        + [
            {
                "name": "Write the outcomes",
                "ansible.builtin.copy": {
                    "dest": str(results),
                    "content": "{{ input_results | to_json }}",
                    "mode": "0644",
                },
                "check_mode": False,
            }
        ],
    }
    playbook = workdir / "inputs.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    run = ansible_playbook(playbook, {"all": {"hosts": {"controller": local_host()}}}, workdir, "--check")
    assert run.returncode == 0, run.stdout + run.stderr
    output = run.stdout + run.stderr + results.read_text()
    assert SECRET not in output and LONG not in output, "a password reached the output"
    return json.loads(results.read_text())


@pytest.mark.parametrize(("number", "case"), list(enumerate(CASES)), ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_bad_input_fails_first_naming_the_variable(outcomes, number, case):
    role, entry, inputs, variable = case
    outcome = next(o for o in outcomes if o["case"] == number)
    assert not outcome["accepted"], f"{role}/{entry} accepted {inputs}"
    assert outcome["action"] == "ansible.builtin.validate_argument_spec", outcome
    assert variable in outcome["msg"], outcome["msg"]


@pytest.mark.parametrize(
    ("number", "case"),
    list(enumerate(PREFLIGHT_CASES, start=len(CASES))),
    ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(PREFLIGHT_CASES)],
)
def test_bad_auth_input_fails_at_preflight_naming_the_variable(outcomes, number, case):
    role, _, inputs, variable = case
    outcome = next(o for o in outcomes if o["case"] == number)
    assert not outcome["accepted"], f"{role} accepted {sorted(inputs)}"
    assert outcome["action"] in {"ansible.builtin.assert", "ansible.builtin.fail"}, outcome
    assert variable in outcome["msg"], outcome["msg"]


@pytest.mark.parametrize(
    ("number", "case"),
    list(enumerate(ACCEPTED_CASES, start=len(CASES) + len(PREFLIGHT_CASES))),
    ids=[f"{c[0]}-accepted-{i}" for i, c in enumerate(ACCEPTED_CASES)],
)
def test_valid_input_passes_the_preflight(outcomes, number, case):
    outcome = next(o for o in outcomes if o["case"] == number)
    assert outcome["accepted"], outcome
