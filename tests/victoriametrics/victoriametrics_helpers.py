"""The victoriametrics role's render entry on the controller: one inventory host per input set (its inputs
as host variables over the role's defaults, or the environment's knobs wired by
group_vars/all/victoriametrics.yml), and the two files it writes read back: the command line (`flags`, one
word per line) and the environment file as systemd hands it to the service (KEY="value" lines, shell-style
double quotes)."""

from dataclasses import dataclass
from pathlib import Path

import yaml
from controller_helpers import ROOT, ansible_playbook, local_host, outcomes

BINARY = Path("/usr/bin/victoria-metrics")
WIRING = ROOT / "group_vars" / "all" / "victoriametrics.yml"


@dataclass(frozen=True)
class Rendered:
    flags: list[str]
    environment: dict[str, str]
    environment_text: str
    failure: str


def _unquote(value: str) -> str:
    """One double-quoted value of an environment file as systemd reads it: a backslash before one of
    " \\ ` $ stands for that character, any other backslash for itself."""
    assert len(value) >= 2 and value[0] == value[-1] == '"', value
    out, chars = [], iter(value[1:-1])
    for char in chars:
        if char == "\\":
            following = next(chars)
            out.append(following if following in '"\\`$' else char + following)
        else:
            out.append(char)
    return "".join(out)


def _environment(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key] = _unquote(value)
    return values


def render(workdir: Path, hosts: dict[str, dict], wired: bool = False) -> dict[str, Rendered]:
    """Renders every host's files below workdir/<host>/; with `wired`, the top-level wiring applies."""
    play = {
        "name": "Render VictoriaMetrics' command line and environment file",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Render",
                "ansible.builtin.include_role": {"name": "victoriametrics", "tasks_from": "render"},
            }
        ],
    }
    if wired:
        play["vars_files"] = [str(WIRING)]
    playbook = workdir / "render.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    inventory = {
        "all": {
            "hosts": {
                name: local_host(victoriametrics_render_dir=str(workdir / name), **inputs)
                for name, inputs in hosts.items()
            }
        }
    }
    results = outcomes(ansible_playbook(playbook, inventory, workdir, json_output=True))
    rendered = {}
    for name in hosts:
        out = workdir / name
        text = (out / "victoriametrics.env").read_text() if (out / "victoriametrics.env").exists() else ""
        rendered[name] = Rendered(
            flags=(out / "flags").read_text().splitlines() if (out / "flags").exists() else [],
            environment=_environment(text),
            environment_text=text,
            failure=results[name].failure,
        )
    return rendered
