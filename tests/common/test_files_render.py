"""common's files entry in render mode with common_files_render_root: each file at its path below that root
(the render directory mirrors the host's tree, directory entries included), absent paths not rendered, the
controller's check run; and a path outside the root refused before anything is written."""

import json

import pytest
from controller_helpers import ansible_playbook, local_host

HOST_ROOT = "/etc/lookout-render-test"


def _files_task(name: str, files: list[dict], render_dir: str) -> dict:
    return {
        "name": name,
        "ansible.builtin.include_role": {"name": "common", "tasks_from": "files"},
        "vars": {
            "common_files": files,
            "common_files_render_dir": render_dir,
            "common_files_render_root": HOST_ROOT,
        },
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    work = tmp_path_factory.mktemp("files-render")
    inside = [
        {"path": HOST_ROOT, "state": "directory", "mode": "0750"},
        {"path": f"{HOST_ROOT}/empty.d", "state": "directory"},
        {"path": f"{HOST_ROOT}/main.conf", "content": "main\n"},
        {"path": f"{HOST_ROOT}/conf.d/a/lookout.json", "content": "{}\n", "render_validate": "test -s %s"},
        {"path": f"{HOST_ROOT}/b/lookout.json", "content": "[]\n", "secret": True},
        {"path": f"{HOST_ROOT}/conf.d/gone.json", "state": "absent"},
    ]
    outside = [{"path": "/etc/elsewhere.conf", "content": "x\n"}]
    play = {
        "name": "Render below a host root",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            _files_task("Render the files inside the root", inside, str(work / "inside")),
            {
                "name": "Render a file outside the root",
                "block": [_files_task("Render outside", outside, str(work / "outside"))],
                "rescue": [
                    {
                        "name": "Refused",
                        "ansible.builtin.debug": {"msg": "REFUSED {{ ansible_failed_result.msg }}"},
                    }
                ],
            },
        ],
    }
    playbook = work / "play.yml"
    playbook.write_text(json.dumps([play]))
    run = ansible_playbook(playbook, {"all": {"hosts": {"localhost": local_host()}}}, work)
    assert run.returncode == 0, run.stdout + run.stderr
    return work, run.stdout


def test_files_keep_their_paths_below_the_root(rendered):
    work, _ = rendered
    out = work / "inside"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "b",
        "b/lookout.json",
        "conf.d",
        "conf.d/a",
        "conf.d/a/lookout.json",
        "empty.d",
        "main.conf",
    ]
    assert (out / "main.conf").read_text() == "main\n"
    assert (out / "conf.d" / "a" / "lookout.json").stat().st_mode & 0o777 == 0o644
    assert (out / "b" / "lookout.json").stat().st_mode & 0o777 == 0o600


def test_a_path_outside_the_root_is_refused(rendered):
    work, stdout = rendered
    assert "REFUSED files: not below common_files_render_root" in stdout
    assert not (work / "outside").exists()
