"""lookout.stack.template (plugins/lookup/template.py): renders as ansible.builtin.template's lookup does
(variables, template_vars, ansible_managed, includes from the role's templates/), leaves the caller's
variables as they were, makes no deep copy of them, and is the one template lookup lookout's roles and
playbooks call."""

import copy
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "shared"))
sys.path.insert(0, str(ROOT / "plugins" / "lookup"))

from controller_helpers import ansible_playbook, local_host  # noqa: E402


def test_it_renders_what_the_builtin_renders_and_leaves_the_callers_variables(tmp_path: Path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "part.j2").write_text("part {{ nested.list | join(',') }}\n")
    # The template also tries to change a value: the play's variable must stay as it was.
    (templates / "main.j2").write_text(
        "{% set _ = nested.map.update({'z': 'changed'}) %}"
        "{{ ansible_managed | comment }}\n{{ greeting }} {{ extra }} {{ template_path | basename }}\n"
        "{% for k, v in nested.map.items() %}{{ k }}={{ v }}\n{% endfor %}{% include 'part.j2' %}"
    )
    out = tmp_path / "out.json"
    task_vars = {"greeting": "hello", "nested": {"list": [1, 2], "map": {"a": "b"}}}
    rendered = {
        name: "{{ lookup('" + name + "', 'main.j2', template_vars={'extra': 'x'}) }}"
        for name in ("ansible.builtin.template", "lookout.stack.template")
    }
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "all",
                    "gather_facts": False,
                    "vars": task_vars,
                    "tasks": [
                        {"name": "Render with both", "ansible.builtin.set_fact": {"rendered": rendered}},
                        {
                            "name": "Write what each rendered and what the play's variables are after",
                            "ansible.builtin.copy": {
                                "dest": str(out),
                                "content": "{{ {'rendered': rendered, 'nested': nested,"
                                " 'leaked': [template_path is defined, extra is defined]} | to_json }}",
                                "mode": "0600",
                            },
                        },
                    ],
                }
            ]
        )
    )
    run = ansible_playbook(playbook, {"all": {"hosts": {"h1": local_host()}}}, tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    builtin, own = (
        result["rendered"]["ansible.builtin.template"],
        result["rendered"]["lookout.stack.template"],
    )
    assert own == builtin
    assert "hello x main.j2\na=b\nz=changed\npart 1,2" in own and own.startswith("#")
    assert result["nested"] == task_vars["nested"]
    assert result["leaked"] == [False, False]


def test_the_copy_it_hands_the_builtin_shares_the_values():
    from template import _TopLevelCopy  # plugins/lookup/template.py

    variables = {"big": {"deep": ["value"]}, "name": "x"}
    copied = copy.deepcopy(_TopLevelCopy(variables))
    assert copied == variables and type(copied) is dict
    assert copied["big"] is variables["big"], "the values are shared, not copied"
    copied["template_path"] = "added"
    assert "template_path" not in variables, "what the builtin adds lands in the copy"


def test_roles_and_playbooks_call_it_not_the_builtin():
    # The builtin's deep copy of every variable cost more than the rendering (bench/README.md, "plugins loaded
    # once, templates without a deep copy"): a new call of it would bring that back unnoticed.
    builtin = re.compile(r"""lookup\(\s*['"](ansible\.builtin\.)?template['"]""")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("roles", "playbooks")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".yml", ".j2", ".md")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if builtin.search(line)
    ]
    assert not found, f"use lookup('lookout.stack.template', ...): {found}"
    assert list((ROOT / "roles").rglob("*.yml")), "the roles are where this test looks"
