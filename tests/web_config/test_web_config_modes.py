"""The common web_config entry's check-only mode, on the controller against local hosts.

- Check only (each role's preflight): every role with basic-auth users refuses bad ones through common's
  check with the message it always gave, word for word, naming its own variables and never a password;
  72 bytes pass and 73 do not, counted in bytes (36 two-byte characters pass, 37 do not); with basic auth
  off nothing is checked.
A web configuration no longer in use is removed with common's files entry (state: absent), tested with it.
"""

import pytest
from controller_helpers import PREFLIGHT_PLAY, PREFLIGHT_REQUIRED, ansible_playbook, local_host, outcomes

# The refusal each role's preflight gave before the check moved into common, word for word.
MESSAGE = (
    "{role}_web_basic_auth_users is required when {role}_web_basic_auth_enabled is true: at least one user, "
    "names without ':' or spaces, each password 1-72 bytes (values not shown)"
)
ROLES = ("prometheus", "alertmanager", "blackbox_exporter")
SECRET = "modes-secret-password"
# (basic auth on, users): refused
REFUSED = {
    "no_user": (True, {}),
    "empty_password": (True, {"lookout": ""}),
    "name_with_colon": (True, {"look:out": SECRET}),
    "name_with_space": (True, {"look out": SECRET}),
    "73_bytes": (True, {"lookout": "p" * 73}),
    "74_bytes_in_37_characters": (True, {"lookout": "é" * 37}),
}
ACCEPTED = {
    "72_bytes": (True, {"lookout": SECRET, "second": "p" * 72}),
    "72_bytes_in_36_characters": (True, {"lookout": "é" * 36}),
    "off": (False, {"look out": ""}),
}


@pytest.fixture(scope="module", params=ROLES)
def preflight(request, tmp_path_factory) -> tuple[str, dict, str]:
    """One run of a role's preflight, one host per case: (role, outcomes, the run's whole output)."""
    role = request.param
    workdir = tmp_path_factory.mktemp(f"{role}-web-users")
    play = workdir / "preflight.yml"
    play.write_text(PREFLIGHT_PLAY.format(role=role))
    hosts = {
        case: local_host(
            **PREFLIGHT_REQUIRED.get(role, {}),
            **{f"{role}_web_basic_auth_enabled": enabled, f"{role}_web_basic_auth_users": users},
        )
        for case, (enabled, users) in (REFUSED | ACCEPTED).items()
    }
    run = ansible_playbook(play, {"all": {"hosts": hosts}}, workdir, json_output=True)
    return role, outcomes(run), run.stdout + run.stderr


@pytest.mark.parametrize("case", REFUSED)
def test_the_role_refuses_bad_users_with_its_own_message(preflight, case):
    role, results, _ = preflight
    assert results[case].failures == (MESSAGE.format(role=role),)
    assert results[case].changed == 0


@pytest.mark.parametrize("case", ACCEPTED)
def test_the_role_lets_good_users_through(preflight, case):
    _, results, _ = preflight
    assert results[case].failures == (), results[case].failure
    assert results[case].changed == 0


def test_no_password_is_shown(preflight):
    _, _, output = preflight
    assert SECRET not in output
    assert "p" * 72 not in output


CHECK_WITHOUT_ROLE_PLAY = """
- name: Check web users without naming the role
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the users
      ansible.builtin.include_role:
        name: common
        tasks_from: web_config
      vars:
        common_web_config_check_only: true
        common_web_config_path: /nonexistent/web.yml
        common_web_config_users: {lookout: a-password}
        common_web_config_group: root
"""


def test_the_check_needs_the_role(tmp_path):
    play = tmp_path / "check.yml"
    play.write_text(CHECK_WITHOUT_ROLE_PLAY)
    run = ansible_playbook(play, {"all": {"hosts": {"mon1": local_host()}}}, tmp_path, json_output=True)
    assert "common_web_config_role" in outcomes(run)["mon1"].failure
