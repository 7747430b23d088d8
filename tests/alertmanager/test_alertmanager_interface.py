"""A missing secret or a wrongly typed input stops the role at its first task, naming the variable."""

import re

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, knobs, local_host

CHANNELS = {"critical": "#alerts", "warning": "#warnings"}
URL = "http://127.0.0.1:5001/services/test"
MONITORING_PASSWORD = "test-monitoring-password"
# 73 bytes: one more than bcrypt reads.
LONG_PASSWORD = "p" * 73


@pytest.fixture(scope="module")
def run_output(tmp_path_factory) -> tuple[dict[str, str], str]:
    """Runs the role in check mode on controller-local hosts that must all fail before any change."""
    workdir = tmp_path_factory.mktemp("alertmanager-interface")
    role = {"name": "Apply the role", "ansible.builtin.include_role": {"name": "alertmanager"}}
    playbook = workdir / "site.yml"
    playbook.write_text(
        yaml.safe_dump([{"name": "Apply", "hosts": "all", "gather_facts": False, "tasks": [role]}])
    )
    wiring = yaml.safe_load((ROOT / "group_vars" / "all" / "alertmanager.yml").read_text())
    # Paths point into the scratch directory: even a role that failed to stop would not touch the system.
    scratch = {
        "alertmanager_config_dir": str(workdir / "etc"),
        "alertmanager_data_dir": str(workdir / "data"),
        "alertmanager_binary_dir": str(workdir / "bin"),
    }
    hosts = {
        "direct": {
            "hosts": {
                "missing_secret": local_host(alertmanager_slack_channels=CHANNELS, **scratch),
                "channels_not_a_map": local_host(
                    alertmanager_slack_channels="#alerts", alertmanager_slack_api_url=URL, **scratch
                ),
                "group_by_not_a_list": local_host(
                    alertmanager_slack_channels=CHANNELS,
                    alertmanager_slack_api_url=URL,
                    alertmanager_group_by={"alertname": True},
                    **scratch,
                ),
                "unknown_method": local_host(
                    alertmanager_slack_channels=CHANNELS,
                    alertmanager_slack_api_url=URL,
                    alertmanager_install_method="snap",
                    **scratch,
                ),
                "default_severity_without_channel": local_host(
                    alertmanager_slack_channels={"critical": "#alerts"},
                    alertmanager_slack_api_url=URL,
                    **scratch,
                ),
                "url_not_http": local_host(
                    alertmanager_slack_channels=CHANNELS,
                    alertmanager_slack_api_url="hooks.slack.com/x",
                    **scratch,
                ),
                "auth_without_users": local_host(
                    alertmanager_slack_channels=CHANNELS,
                    alertmanager_slack_api_url=URL,
                    alertmanager_web_basic_auth_enabled=True,
                    **scratch,
                ),
                "auth_empty_password": local_host(
                    alertmanager_slack_channels=CHANNELS,
                    alertmanager_slack_api_url=URL,
                    alertmanager_web_basic_auth_enabled=True,
                    alertmanager_web_basic_auth_users={"lookout": ""},
                    **scratch,
                ),
                "auth_password_too_long": local_host(
                    alertmanager_slack_channels=CHANNELS,
                    alertmanager_slack_api_url=URL,
                    alertmanager_web_basic_auth_enabled=True,
                    alertmanager_web_basic_auth_users={"lookout": LONG_PASSWORD},
                    **scratch,
                ),
            }
        },
        # The operators' wiring, with the environment's knobs but without (part of) its vault.
        "wired": {
            "hosts": {
                "vault_secret_missing": local_host(
                    **knobs("testing"), **wiring, **scratch, vault_monitoring_password=MONITORING_PASSWORD
                ),
                "monitoring_password_missing": local_host(
                    **knobs("testing"), **wiring, **scratch, vault_slack_webhook_url=URL
                ),
            }
        },
    }
    run = ansible_playbook(playbook, {"all": {"children": hosts}}, workdir, "--check")
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    recap = dict(re.findall(r"^(\w+)\s+:\s+ok=\d+\s+changed=(\d+)", run.stdout, re.M))
    for group in hosts.values():
        for host in group["hosts"]:
            assert recap.get(host) == "0", f"{host} changed something or did not run:\n{output}"
    failed = {}
    for host in [h for group in hosts.values() for h in group["hosts"]]:
        lines = [line for line in output.splitlines() if f"[{host}]" in line and "FAILED" in line]
        assert lines, f"{host} did not fail:\n{output}"
        # The error follows the fatal line up to the next blank line.
        start = output.index(lines[0])
        failed[host] = output[start : output.find("\n\n", start)]
    return failed, output


@pytest.fixture(scope="module")
def failures(run_output) -> dict[str, str]:
    return run_output[0]


@pytest.mark.parametrize(
    ("host", "variable"),
    [
        ("missing_secret", "alertmanager_slack_api_url"),
        ("channels_not_a_map", "alertmanager_slack_channels"),
        ("group_by_not_a_list", "alertmanager_group_by"),
        ("unknown_method", "alertmanager_install_method"),
        ("default_severity_without_channel", "alertmanager_slack_default_severity"),
        ("url_not_http", "alertmanager_slack_api_url"),
        ("vault_secret_missing", "vault_slack_webhook_url"),
        ("monitoring_password_missing", "vault_monitoring_password"),
        ("auth_without_users", "alertmanager_web_basic_auth_users"),
        ("auth_empty_password", "alertmanager_web_basic_auth_users"),
        ("auth_password_too_long", "alertmanager_web_basic_auth_users"),
    ],
)
def test_bad_input_fails_naming_the_variable(failures, host, variable):
    assert variable in failures[host], failures[host]


def test_a_secret_is_never_printed(run_output):
    output = run_output[1]
    assert URL not in output
    assert MONITORING_PASSWORD not in output
    assert LONG_PASSWORD not in output
    assert "hooks.slack.com/x" not in output
