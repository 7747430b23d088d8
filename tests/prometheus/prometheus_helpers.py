"""Helpers of the prometheus tests: ansible-playbook on the controller, promtool, and a small model of the
PromQL functions the shipped rules use (rate over regular samples, histogram_quantile) so that each rule
test can say exactly when its condition starts to hold.

The rules are rendered by the role's own `render` entry point (ansible-playbook on the controller, no hosts)
with the role defaults and with every environment's knobs wired by `group_vars/all/prometheus.yml`.
"""

import fcntl
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from controller_helpers import ENVIRONMENTS, ROOT, tool

sys.path.insert(0, str(ROOT / "tests" / "inventories"))
from inventory_helpers import make_test_inventory

# The name under which the rules rendered with the role defaults alone are kept.
DEFAULTS = "role-defaults"
# Production's knobs with a frontend host: the site URLs and HAProxy targets the wiring derives from it.
FRONTEND = "production+frontend"

# The scenarios' sample spacing and the rule evaluation interval of the promtool tests.
STEP = 15


def render_env() -> dict:
    """The environment of an ansible-playbook run of playbooks/render.yml."""
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.timer",
    )


def render_command(
    env: str, inventory: Path, password_file: Path | None, out: Path, *extra: str
) -> list[str]:
    """playbooks/render.yml on an inventory (its vault opened with password_file), into out/<host>/."""
    command = [tool("ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / "render.yml")]
    command += [*extra, "-e", f"lookout_render_dir={out}"]
    if password_file:
        command += ["--vault-id", f"{env}@{password_file}"]
    return command


@dataclass(frozen=True)
class EnvironmentRender:
    """One environment rendered by playbooks/render.yml: its test inventory, the password of its test vault
    (None for the demo), the render directory (one folder per monitoring host) and the run's exit code and
    output."""

    env: str
    inventory: Path
    password_file: Path | None
    out: Path
    returncode: int
    output: str


def environment_renders(tmp_path_factory) -> dict[str, EnvironmentRender]:
    """Every environment rendered by playbooks/render.yml (every service, no --tags) from a copy of its
    inventory with a generated test vault, ONCE per test run for test_config.py and test_web_auth.py, which
    read the same renders: the first file to ask renders the environments (in parallel), a file asking later
    or meanwhile waits for it and reads them. pytest-xdist's workers share the parent of their base
    temporary directories, so this holds across workers; the lock file orders them."""
    base = tmp_path_factory.getbasetemp()
    workdir = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "environment-renders"
    workdir.mkdir(exist_ok=True)
    record = workdir / "renders.json"
    with (workdir / "renders.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            record.write_text(json.dumps(_render_environments(workdir)))
        renders = json.loads(record.read_text())
    return {
        env: EnvironmentRender(
            env=env,
            inventory=Path(found["inventory"]),
            password_file=Path(found["password_file"]) if found["password_file"] else None,
            out=Path(found["out"]),
            returncode=found["returncode"],
            output=found["output"],
        )
        for env, found in renders.items()
    }


def _render_environments(workdir: Path) -> dict[str, dict]:
    runs = {}
    for env in ENVIRONMENTS:
        inventory, password_file = make_test_inventory(env, workdir / "inventories")
        out = workdir / "out" / env
        process = subprocess.Popen(
            render_command(env, inventory, password_file, out),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=render_env(),
        )
        runs[env] = (inventory, password_file, out, process)
    found = {}
    for env, (inventory, password_file, out, process) in runs.items():
        output = process.communicate(timeout=300)[0].decode()
        found[env] = {
            "inventory": str(inventory),
            "password_file": str(password_file) if password_file else None,
            "out": str(out),
            "returncode": process.returncode,
            "output": output,
        }
    return found


def seconds(duration: str) -> int:
    """A Prometheus duration such as 1m, 30s, 1h30m, in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, number = 0.0, ""
    text = str(duration)
    i = 0
    while i < len(text):
        if text[i].isdigit():
            number += text[i]
            i += 1
            continue
        unit = "ms" if text.startswith("ms", i) else text[i]
        total += int(number) * units[unit]
        number = ""
        i += len(unit)
    assert not number, f"duration without a unit: {duration}"
    return int(total)


def rate(values: list[float], index: int, window: int) -> float | None:
    """Prometheus 2's rate() at sample `index` of a counter sampled every STEP seconds, for a window of
    `window` seconds aligned with the samples: the range includes the sample at its start, so the samples
    span the whole window and nothing is extrapolated. None until the window is full."""
    first = index - window // STEP
    if first < 0:
        return None
    return (values[index] - values[first]) / window


def histogram_quantile(q: float, buckets: dict[float, float]) -> float:
    """Prometheus' histogram_quantile over cumulative bucket rates keyed by upper bound."""
    bounds = sorted(buckets)
    total = buckets[math.inf]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == math.inf:
                return lower
            return lower + (bound - lower) * (rank - below) / (buckets[bound] - below)
        lower, below = bound, buckets[bound]
    return math.nan


def go_g4(value: float) -> str:
    """Go's fmt %.4g (the same as Python's for the magnitudes the rules produce)."""
    return f"{value:.4g}"


def humanize(value: float) -> str:
    """Prometheus' humanize template function for values between 1e-3 and 1e3."""
    if value == 0 or 1 <= abs(value) < 1000:
        return go_g4(value)
    if abs(value) < 1:
        return go_g4(value * 1000) + "m"
    raise ValueError(f"no need to humanize {value} in these tests")


def humanize_percentage(value: float) -> str:
    return go_g4(value * 100) + "%"


def humanize_duration(value: float) -> str:
    """Prometheus' humanizeDuration for whole seconds of a minute or more (days, hours, minutes, seconds)."""
    assert abs(value) >= 60 and value == int(value), (
        f"no need to humanize the duration {value} in these tests"
    )
    sign, total = ("-" if value < 0 else ""), int(abs(value))
    days, hours, minutes, secs = total // 86400, total // 3600 % 24, total // 60 % 60, total % 60
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {secs}s"
    return f"{sign}{minutes}m {secs}s"


def expand(template: str, labels: dict, value: float) -> str:
    """Expands the Prometheus template forms the shipped annotations use."""
    text = template
    # Only the forms present: values such as a backup's age are outside what humanize() models here.
    for form, format_value in (
        ("{{ $value | humanizePercentage }}", humanize_percentage),
        ("{{ $value | humanizeDuration }}", humanize_duration),
        ("{{ $value | humanize }}", humanize),
    ):
        if form in text:
            text = text.replace(form, format_value(value))
    for name, label in labels.items():
        text = text.replace("{{ $labels." + name + " }}", label)
    assert "{{" not in text, f"template form not covered by the tests: {template}"
    return text


def series_selector(name: str, labels: dict) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def promtool_test(workdir: Path, rules_file: Path, test: dict) -> subprocess.CompletedProcess:
    """`promtool test rules` of one test against the rendered rules. promtool evaluates every rule of its
    files at each step: with alert tests, only the alerts under test are given, each in its group as rendered
    (the group's name and interval). No shipped rule records a series or reads ALERTS, so no rule reads
    another's result; the asserts below stop the shortcut the day one does."""
    alerts = {case["alertname"] for case in test.get("alert_rule_test", [])}
    if alerts:
        shipped = yaml.safe_load(rules_file.read_text())["groups"]
        assert not any(
            "record" in rule or "ALERTS" in rule["expr"] for group in shipped for rule in group["rules"]
        ), "a rule reads another's result: give promtool every rule"
        groups = [
            {**group, "rules": [rule for rule in group["rules"] if rule.get("alert") in alerts]}
            for group in shipped
        ]
        groups = [group for group in groups if group["rules"]]
        assert sorted(rule["alert"] for group in groups for rule in group["rules"]) == sorted(alerts), alerts
        rules_file = workdir / "rules-under-test.yml"
        rules_file.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=1000))
    test_file = workdir / "test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [str(rules_file)], "evaluation_interval": f"{STEP}s", "tests": [test]},
            sort_keys=False,
            width=1000,
        )
    )
    return subprocess.run(
        [tool("promtool"), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=workdir,
    )
