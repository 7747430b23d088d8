"""Helpers of the prometheus tests: ansible-playbook on the controller, promtool, and a small model of the
PromQL functions the shipped rules use (rate over regular samples, histogram_quantile) so that each rule
test can say exactly when its condition starts to hold.

The rules are rendered by the role's own `render` entry point (ansible-playbook on the controller, no hosts)
with the role defaults and with every environment's knobs wired by `group_vars/all/prometheus.yml`.
"""

import math
import subprocess
from pathlib import Path

import yaml
from controller_helpers import tool

# The name under which the rules rendered with the role defaults alone are kept.
DEFAULTS = "role-defaults"
# Production's knobs with a frontend host: the site URLs and HAProxy targets the wiring derives from it.
FRONTEND = "production+frontend"

# The scenarios' sample spacing and the rule evaluation interval of the promtool tests.
STEP = 15


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
