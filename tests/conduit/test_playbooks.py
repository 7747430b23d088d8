"""The conduit playbooks: thin, on the web group, and the deploy rolls batch by batch, stopping at the
first failed host; the wiring maps the inventory's knobs and secrets onto the role's inputs."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _plays(name: str) -> list[dict]:
    return yaml.safe_load((ROOT / "playbooks" / name).read_text())


def test_web_playbook_rolls_one_batch_at_a_time_and_stops_at_a_failure():
    (play,) = _plays("web.yml")
    assert play["hosts"] == "web"
    assert play["max_fail_percentage"] == 0
    assert play["serial"] == "{{ lookout_deploy_serial | default(1) }}"
    assert [r["role"] for r in play["roles"]] == ["conduit"]


def test_deploy_is_the_web_play():
    (play,) = _plays("deploy.yml")
    assert play["ansible.builtin.import_playbook"] == "web.yml"


def test_wiring_takes_secrets_from_the_vault_and_the_version_from_the_inventory():
    wiring = yaml.safe_load((ROOT / "group_vars" / "all" / "conduit.yml").read_text())
    assert wiring["conduit_version"] == "{{ lookout_conduit_version }}"
    assert wiring["conduit_secret_key"] == "{{ vault_conduit_secret_key }}"
    assert wiring["conduit_database_password"] == "{{ vault_conduit_database_password }}"
    assert all(key.startswith("conduit_") for key in wiring)
