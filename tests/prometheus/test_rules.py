"""`promtool test rules` for every shipped alert, with the role defaults and each environment's thresholds.

Each scenario feeds series that cross the alert's threshold at a known sample, and checks with promtool:
the condition starts to hold exactly there (PromQL test), the alert is silent one evaluation before its
`for` has elapsed, fires with its labels and annotations once it has, and is resolved when the series
recover. The thresholds come from the rendered rule itself (test_thresholds pins them to the inputs).

Series values are floats, None for no sample (`_`) and STALE for the staleness marker a failed scrape
leaves on every series of its target.

FRONTEND (production behind a frontend host) has site URLs: its WebsiteDown reads the public URL's probe
and WebHostDown the per-host probes; without site URLs WebHostDown does not exist and WebsiteDown is the
seed's per-host rule.
"""

import math
import re
from dataclasses import dataclass, field

import pytest
import yaml
from controller_helpers import ENVIRONMENTS, ROOT
from prometheus_helpers import (
    DEFAULTS,
    FRONTEND,
    STEP,
    expand,
    histogram_quantile,
    promtool_test,
    rate,
    seconds,
    series_selector,
)

ALERTS = (
    "WebsiteDown",
    "WebHostDown",
    "BackendDown",
    "HighRequestRate",
    "HighErrorRate",
    "HighLatency",
    "TargetDown",
    "NodeDiskSpaceLow",
    "NodeMemoryLow",
    "PostgresDown",
    "PostgresTooManyConnections",
    "BackupTooOld",
    "BackupRestoreFailed",
)
VARIANTS = (DEFAULTS, *ENVIRONMENTS, FRONTEND)
# Variants with site URLs, the only ones with WebHostDown.
SITE_VARIANTS = (FRONTEND,)
ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles" / "prometheus" / "defaults" / "main.yml").read_text())
SITE_URL = "https://conduit.example.org/health"
WEB = "web1:5566"
STALE = "stale"
# A job name the postgres job regex of the rules must match, as group_vars/all/prometheus.yml names it.
POSTGRES_JOB = "test-postgres"
BACKUP = {"job": "node", "database": "conduit"}


@dataclass
class Scenario:
    """Series (selector -> one value per STEP) and what the alert must do with them."""

    series: dict[str, list[float]]
    # Per sample: the alerts' labels (beyond alertname/severity) and $value while the condition holds.
    condition: list[list[tuple[dict, float]]] = field(default_factory=list)
    # Labels of the series that must never alert (filters), for documentation in failures.
    quiet: tuple[str, ...] = ()


def threshold(rule: dict) -> float:
    found = re.findall(r"[<>]\s*([0-9.]+(?:e[-+]?[0-9]+)?)", rule["expr"])
    assert found, f"no threshold in {rule['expr']}"
    return float(found[0])


def phases(*parts: tuple[int, float]) -> list[float]:
    """A counter from 1000, rising per step by rate*STEP for each (steps, rate) part."""
    values, value = [], 1000.0
    for steps, per_second in parts:
        for _ in range(steps):
            value += per_second * STEP
            values.append(value)
    return values


def gauge(*parts: tuple[int, float | str | None]) -> list[float | str | None]:
    return [value for steps, value in parts for _ in range(steps)]


def sample(value: float | str | None) -> str:
    """One value in promtool's series notation."""
    if value is None:
        return "_"
    return STALE if value == STALE else repr(float(value))


def postgres_job(rule: dict, operator: str) -> str:
    """POSTGRES_JOB, checked against the postgres job regex the rule selects `up` with."""
    regex = re.search(r"job" + operator + r'"([^"]+)"', rule["expr"]).group(1)
    assert re.fullmatch(regex, POSTGRES_JOB), f"{POSTGRES_JOB} does not match {regex}"
    return POSTGRES_JOB


def website_down(rule: dict, hold: int) -> Scenario:
    """The per-host probes (WebHostDown, or WebsiteDown without site URLs), or the site's public URLs,
    labelled as prometheus.yml labels them: a web host's probe keeps the host as `instance`, a site
    probe's `instance` is its URL."""
    up, down = 4, hold + 4
    job = re.search(r'job="([^"]+)"', rule["expr"]).group(1)
    if job == ROLE_DEFAULTS["prometheus_blackbox_job_name"]:
        refused = {"job": job, "instance": WEB, "url": f"http://{WEB}/"}
        failing = {"job": job, "instance": WEB, "url": f"http://{WEB}/health"}
    else:
        other = SITE_URL.replace("/health", "/")
        refused = {"job": job, "instance": SITE_URL, "url": SITE_URL}
        failing = {"job": job, "instance": other, "url": other}
    series = {
        # No answer at all: status code 0.
        series_selector("probe_http_status_code", refused): gauge((up, 200), (down, 0), (8, 200)),
        series_selector("probe_success", refused): gauge((up, 1), (down, 0), (8, 1)),
        # An answer, but not a 2xx: the probe fails.
        series_selector("probe_http_status_code", failing): gauge((up, 200), (down, 503), (8, 200)),
        series_selector("probe_success", failing): gauge((up, 1), (down, 0), (8, 1)),
    }
    length = up + down + 8
    condition = [[(refused, 0.0), (failing, 0.0)] if up <= i < up + down else [] for i in range(length)]
    return Scenario(series, condition)


def high_request_rate(rule: dict, hold: int) -> Scenario:
    limit = threshold(rule)
    window = seconds(re.search(r"\[(\w+)\]", rule["expr"]).group(1))
    calm, busy = limit / 2, limit * 2
    labels = {"job": "test-web", "instance": WEB, "method": "GET", "status": "200"}
    quiet = {**labels, "instance": "web2:5566"}
    busy_steps = hold + window // STEP + 4
    values = phases((8, calm), (busy_steps, busy), (window // STEP + 8, calm))
    series = {
        series_selector("flask_http_request_total", labels): values,
        series_selector("flask_http_request_total", quiet): phases((len(values), calm)),
    }
    condition = []
    for i in range(len(values)):
        value = rate(values, i, window)
        condition.append([({"instance": WEB}, value)] if value is not None and value > limit else [])
    return Scenario(series, condition, quiet=("web2:5566",))


def high_error_rate(rule: dict, hold: int) -> Scenario:
    limit = threshold(rule)
    window = seconds(re.search(r"\[(\w+)\]", rule["expr"]).group(1))
    ok_rate = 10.0
    target = min(2 * limit, 0.5)
    error_rate = ok_rate * target / (1 - target)
    base = {"job": "test-web", "instance": WEB, "method": "GET"}
    calm_steps, bad_steps, after = window // STEP + 2, hold + window // STEP + 4, window // STEP + 8
    total = calm_steps + bad_steps + after
    ok = phases((total, ok_rate))
    errors = phases((calm_steps, 0.0), (bad_steps, error_rate), (after, 0.0))
    series = {
        series_selector("flask_http_request_total", {**base, "status": "200"}): ok,
        series_selector("flask_http_request_total", {**base, "status": "500"}): errors,
    }
    condition = []
    for i in range(total):
        failed, served = rate(errors, i, window), rate(ok, i, window)
        ratio = None if failed is None else failed / (failed + served)
        condition.append([({"instance": WEB}, ratio)] if ratio is not None and ratio > limit else [])
    return Scenario(series, condition)


def high_latency(rule: dict, hold: int) -> Scenario:
    limit = threshold(rule)
    window = seconds(re.search(r"\[(\w+)\]", rule["expr"]).group(1))
    bounds = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf]
    slow_bound = next(b for b in bounds if b > limit and bounds[bounds.index(b) - 1] >= limit)
    requests = 10.0
    fast_steps, slow_steps, after = window // STEP + 2, hold + window // STEP + 4, window // STEP + 8
    total = fast_steps + slow_steps + after
    buckets = {}
    for bound in bounds:
        fast = requests if bound >= 0.1 else 0.0
        slow = requests if bound >= slow_bound else 0.0
        buckets[bound] = phases((fast_steps, fast), (slow_steps, slow), (after, fast))
    labels = {
        "job": "test-web",
        "instance": WEB,
        "method": "GET",
        "endpoint": "articles.list",
        "status": "200",
    }
    series = {
        series_selector(
            "flask_http_request_duration_seconds_bucket",
            {**labels, "le": "+Inf" if b == math.inf else str(b)},
        ): values
        for b, values in buckets.items()
    }
    condition = []
    for i in range(total):
        rates = {b: rate(values, i, window) for b, values in buckets.items()}
        if rates[math.inf] is None:
            condition.append([])
            continue
        p95 = histogram_quantile(0.95, rates)
        condition.append([({"instance": WEB}, p95)] if p95 > limit else [])
    return Scenario(series, condition)


def target_down(rule: dict, hold: int) -> Scenario:
    labels = {"job": "node", "instance": "web1:9100"}
    # Down at the same time, but PostgresDown's to report.
    exporter = {"job": postgres_job(rule, "!~"), "instance": "db1:9187"}
    up, down = 4, hold + 4
    series = {
        series_selector("up", labels): gauge((up, 1), (down, 0), (8, 1)),
        series_selector("up", exporter): gauge((up, 1), (down, 0), (8, 1)),
    }
    condition = [[(labels, 0.0)] if up <= i < up + down else [] for i in range(up + down + 8)]
    return Scenario(series, condition, quiet=(POSTGRES_JOB,))


def node_disk_space_low(rule: dict, hold: int) -> Scenario:
    limit = threshold(rule)
    size = 100e9
    root = {
        "job": "node",
        "instance": "web1:9100",
        "device": "/dev/sda1",
        "fstype": "ext4",
        "mountpoint": "/",
    }
    # Nearly full, but neither is a disk that fills: memory-backed, and the runtime directory.
    tmpfs = {**root, "device": "tmpfs", "fstype": "tmpfs", "mountpoint": "/dev/shm"}
    run = {**root, "device": "/dev/sda2", "mountpoint": "/run/user"}
    ok, down = 4, hold + 4
    low = size * limit / 2
    length = ok + down + 8
    series = {}
    for labels, avail in (
        (root, gauge((ok, size / 2), (down, low), (8, size / 2))),
        (tmpfs, gauge((length, low))),
        (run, gauge((length, low))),
    ):
        series[series_selector("node_filesystem_avail_bytes", labels)] = avail
        series[series_selector("node_filesystem_size_bytes", labels)] = gauge((length, size))
        series[series_selector("node_filesystem_readonly", labels)] = gauge((length, 0))
    condition = [[(root, limit / 2)] if ok <= i < ok + down else [] for i in range(length)]
    return Scenario(series, condition, quiet=("tmpfs", "/run/user"))


def node_memory_low(rule: dict, hold: int) -> Scenario:
    limit = threshold(rule)
    labels = {"job": "node", "instance": "web1:9100"}
    total = 8e9
    ok, low = 4, hold + 4
    series = {
        series_selector("node_memory_MemAvailable_bytes", labels): gauge(
            (ok, total / 2), (low, total * limit / 2), (8, total / 2)
        ),
        series_selector("node_memory_MemTotal_bytes", labels): gauge((ok + low + 8, total)),
    }
    condition = [[(labels, limit / 2)] if ok <= i < ok + low else [] for i in range(ok + low + 8)]
    return Scenario(series, condition)


def postgres_down(rule: dict, hold: int) -> Scenario:
    """Three outages from the same sample on: the database (the exporter answers pg_up 0), the exporter
    (the scrape fails: up 0, pg_up stale), and the database first with the exporter dying before `for` has
    elapsed. The last one fires on time only if both causes give the alert the same labels; its pg_up
    carries an extra label (as constant labels would) that must not split it."""
    assert hold >= 2, "the cause must change while the alert is pending"
    job = postgres_job(rule, "=~")
    database = {"job": job, "instance": "db1:9187"}
    exporter = {"job": job, "instance": "db2:9187"}
    both = {"job": job, "instance": "db3:9187"}
    ok, down, after, switch = 4, hold + 4, 8, hold // 2
    gone = [STALE] + [None] * (down - 1)
    series = {
        series_selector("up", database): gauge((ok + down + after, 1)),
        series_selector("pg_up", database): gauge((ok, 1), (down, 0), (after, 1)),
        series_selector("up", exporter): gauge((ok, 1), (down, 0), (after, 1)),
        series_selector("pg_up", exporter): gauge((ok, 1)) + gone + gauge((after, 1)),
        series_selector("up", both): gauge((ok + switch, 1), (down - switch, 0), (after, 1)),
        series_selector("pg_up", {**both, "server": "127.0.0.1:5432"}): gauge((ok, 1), (switch, 0))
        + gone[: down - switch]
        + gauge((after, 1)),
    }
    condition = [
        [(labels, 0.0) for labels in (database, exporter, both)] if ok <= i < ok + down else []
        for i in range(ok + down + after)
    ]
    return Scenario(series, condition)


def postgres_too_many_connections(rule: dict, hold: int) -> Scenario:
    limit = threshold(rule)
    busy_db = {"job": POSTGRES_JOB, "instance": "db1:9187"}
    # As many connections, but a larger max_connections: each instance is divided by its own.
    roomy_db = {"job": POSTGRES_JOB, "instance": "db2:9187"}
    max_connections, roomy_max = 200, 2000
    busy = min(max_connections, int(limit * max_connections) + 10)
    assert busy / max_connections > limit
    calm_active, busy_active, idle = 10, busy - 20, 20
    ok, high, after = 4, hold + 4, 8
    length = ok + high + after
    active = gauge((ok, calm_active), (high, busy_active), (after, calm_active))
    series = {}
    for labels, allowed in ((busy_db, max_connections), (roomy_db, roomy_max)):
        for datname, state, values in (
            ("conduit", "active", active),
            ("conduit", "idle", gauge((length, idle))),
            ("postgres", "idle", gauge((length, 0))),
        ):
            activity = {**labels, "datname": datname, "state": state}
            series[series_selector("pg_stat_activity_count", activity)] = values
        series[series_selector("pg_settings_max_connections", labels)] = gauge((length, allowed))
    ratio = busy / max_connections
    condition = [[(busy_db, ratio)] if ok <= i < ok + high else [] for i in range(length)]
    return Scenario(series, condition, quiet=("db2:9187",))


def backup_too_old(rule: dict, hold: int) -> Scenario:
    """promtool's clock starts at 0, so backups before the scenario have negative timestamps. One backup
    crosses the maximum age, one series appears without any success yet (0), one backup a minute short of
    the maximum age at the end stays quiet; new backups clear both alerts."""
    limit = int(threshold(rule))
    old = {**BACKUP, "instance": "db1:9100"}
    never = {**BACKUP, "instance": "db2:9100"}
    fresh = {**BACKUP, "instance": "db3:9100"}
    ok, stale, after = 4, hold + 4, 8
    length, end = ok + stale + after, ok + stale
    last_old = (ok - 1) * STEP - limit
    name = "lookout_backup_last_success_timestamp_seconds"
    series = {
        series_selector(name, old): gauge((end, last_old), (after, end * STEP)),
        series_selector(name, never): gauge((ok, None), (stale, 0), (after, end * STEP)),
        series_selector(name, fresh): gauge((length, (length - 1) * STEP - limit + 60)),
    }
    condition = [[(old, i * STEP - last_old), (never, 0.0)] if ok <= i < end else [] for i in range(length)]
    return Scenario(series, condition, quiet=("db3:9100",))


def backup_restore_failed(rule: dict, hold: int) -> Scenario:
    """One restore check fails; another stops running (its last success crosses the maximum age); a
    third keeps succeeding. The next successful checks clear both."""
    limit = int(threshold(rule))
    failed = {**BACKUP, "instance": "db1:9100"}
    stopped = {**BACKUP, "instance": "db2:9100"}
    fine = {**BACKUP, "instance": "db3:9100"}
    ok, bad, after = 4, hold + 4, 8
    length, end = ok + bad + after, ok + bad
    last_stopped = (ok - 1) * STEP - limit
    success = "lookout_restore_check_success"
    last = "lookout_restore_check_last_success_timestamp_seconds"
    series = {
        series_selector(success, failed): gauge((ok, 1), (bad, 0), (after, 1)),
        series_selector(last, failed): gauge((end, -3600), (after, end * STEP)),
        series_selector(success, stopped): gauge((length, 1)),
        series_selector(last, stopped): gauge((end, last_stopped), (after, end * STEP)),
        series_selector(success, fine): gauge((length, 1)),
        series_selector(last, fine): gauge((length, -3600)),
    }
    condition = [
        [(failed, 0.0), (stopped, i * STEP - last_stopped)] if ok <= i < end else [] for i in range(length)
    ]
    return Scenario(series, condition, quiet=("db3:9100",))


def backend_down(rule: dict, hold: int) -> Scenario:
    """Two frontend hosts report the same servers. web1 goes DOWN on both (one alert, its instance the
    server's name); web2 is drained, web3 in maintenance, web4 UP: they never alert, nor does a DOWN
    server of another backend."""
    backend = re.search(r'proxy="([^"]+)"', rule["expr"]).group(1)
    job = "test-haproxy"
    ok, down, after = 4, hold + 4, 8
    length = ok + down + after
    states = ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")

    def server(name: str, proxy: str, frontend: str, state_of) -> dict:
        labels = {"job": job, "instance": frontend, "proxy": proxy, "server": name}
        return {
            series_selector("haproxy_server_status", {**labels, "state": s}): [
                1.0 if state_of(i) == s else 0.0 for i in range(length)
            ]
            for s in states
        }

    def failing(i: int) -> str:
        return "DOWN" if ok <= i < ok + down else "UP"

    series = {}
    for frontend in ("lb1:8405", "lb2:8405"):
        series |= server("web1:5566", backend, frontend, failing)
        series |= server("web2:5566", backend, frontend, lambda i: "DRAIN")
        series |= server("web3:5566", backend, frontend, lambda i: "MAINT")
        series |= server("web4:5566", backend, frontend, lambda i: "UP")
        series |= server("web1:5566", f"not-{backend}", frontend, lambda i: "DOWN")
    alert = {"job": job, "proxy": backend, "server": "web1:5566", "instance": "web1:5566"}
    condition = [[(alert, 1.0)] if ok <= i < ok + down else [] for i in range(length)]
    return Scenario(series, condition, quiet=("web2:5566 DRAIN", "web3:5566 MAINT", "web4:5566 UP"))


SCENARIOS = {
    "WebsiteDown": website_down,
    "WebHostDown": website_down,
    "BackendDown": backend_down,
    "HighRequestRate": high_request_rate,
    "HighErrorRate": high_error_rate,
    "HighLatency": high_latency,
    "TargetDown": target_down,
    "NodeDiskSpaceLow": node_disk_space_low,
    "NodeMemoryLow": node_memory_low,
    "PostgresDown": postgres_down,
    "PostgresTooManyConnections": postgres_too_many_connections,
    "BackupTooOld": backup_too_old,
    "BackupRestoreFailed": backup_restore_failed,
}


def shipped(variant: str) -> list[str]:
    """The alerts a variant's rules must hold: WebHostDown only with site URLs."""
    return [a for a in ALERTS if a != "WebHostDown" or variant in SITE_VARIANTS]


def test_every_shipped_alert_has_a_scenario(rendered):
    assert sorted(SCENARIOS) == sorted(ALERTS)
    for variant in VARIANTS:
        assert sorted(rendered[variant].rules) == sorted(shipped(variant)), variant


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_alert_is_documented(rendered, variant):
    for name, rule in rendered[variant].rules.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"].endswith("#" + name.lower()), name


@pytest.mark.parametrize(
    ("variant", "alert"), [(v, a) for v in VARIANTS for a in shipped(v)], ids=lambda x: x
)
def test_alert_fires_after_for_and_resolves(rendered, variant, alert, tmp_path):
    rules = rendered[variant]
    rule = rules.rules[alert]
    hold = seconds(rule["for"]) // STEP
    assert hold * STEP == seconds(rule["for"]), f"{alert}: `for` must be a multiple of {STEP}s here"
    scenario = SCENARIOS[alert](rule, hold)

    holding = [bool(c) for c in scenario.condition]
    start = holding.index(True)
    end = start + holding[start:].index(False)
    assert end - start > hold, f"{alert}: the scenario must hold the condition longer than `for`"
    assert all(len(v) == len(scenario.condition) for v in scenario.series.values()), (
        "series of unequal length"
    )

    def at(index: int) -> str:
        return f"{index * STEP}s"

    def alerts(index: int) -> list[dict]:
        return [
            {
                "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
                "exp_annotations": {k: expand(v, labels, value) for k, v in rule["annotations"].items()},
            }
            for labels, value in scenario.condition[index]
        ]

    firing = start + hold
    test = {
        "interval": f"{STEP}s",
        "input_series": [
            {"series": selector, "values": " ".join(sample(v) for v in values)}
            for selector, values in scenario.series.items()
        ],
        "promql_expr_test": [
            {"expr": f"count({rule['expr']})", "eval_time": at(start - 1), "exp_samples": []},
            {
                "expr": f"count({rule['expr']})",
                "eval_time": at(start),
                "exp_samples": [{"labels": "{}", "value": len(scenario.condition[start])}],
            },
        ],
        "alert_rule_test": [
            {"eval_time": at(firing - 1), "alertname": alert, "exp_alerts": []},
            {"eval_time": at(firing), "alertname": alert, "exp_alerts": alerts(firing)},
            {"eval_time": at(end), "alertname": alert, "exp_alerts": []},
        ],
    }
    result = promtool_test(tmp_path, rules.rules_file, test)
    assert result.returncode == 0, f"{variant} {alert} (for {rule['for']}):\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_thresholds_follow_the_environment(rendered, env):
    rules = rendered[env].rules
    knob = rendered[env].knobs
    assert rules["WebsiteDown"]["for"] == knob["lookout_alert_website_down_for"]
    assert rules["HighRequestRate"]["for"] == knob["lookout_alert_high_request_rate_for"]
    assert threshold(rules["HighRequestRate"]) == float(knob["lookout_alert_high_request_rate"])


def test_the_seeds_rules_keep_their_names_and_expressions(rendered):
    rules = rendered[DEFAULTS].rules
    assert rules["HighRequestRate"]["expr"] == (
        'sum by (instance) (rate(flask_http_request_total{job=~".*-web"}[1m])) > 5'
    )
    assert rules["HighRequestRate"]["for"] == "1m"
    assert "probe_http_status_code" in rules["WebsiteDown"]["expr"]
    assert "== 0" in rules["WebsiteDown"]["expr"]
    assert rules["WebsiteDown"]["for"] == "1m"


@pytest.mark.parametrize("variant", VARIANTS)
def test_postgres_down_is_one_alert_when_both_causes_hold(rendered, variant, tmp_path):
    """pg_up 0 and a failed scrape at once (pg_up still within the lookback): one series, one alert."""
    rule = rendered[variant].rules["PostgresDown"]
    hold = seconds(rule["for"]) // STEP
    labels = {"job": postgres_job(rule, "=~"), "instance": "db1:9187"}
    down = f"1 0x{hold + 4}"
    test = {
        "interval": f"{STEP}s",
        "input_series": [
            {"series": series_selector("up", labels), "values": down},
            {"series": series_selector("pg_up", {**labels, "server": "127.0.0.1:5432"}), "values": down},
        ],
        "promql_expr_test": [
            {
                "expr": f"count({rule['expr']})",
                "eval_time": f"{STEP}s",
                "exp_samples": [{"labels": "{}", "value": 1}],
            }
        ],
        "alert_rule_test": [
            {
                "eval_time": f"{(1 + hold) * STEP}s",
                "alertname": "PostgresDown",
                "exp_alerts": [
                    {
                        "exp_labels": {**labels, "severity": "critical"},
                        "exp_annotations": {
                            k: expand(v, labels, 0.0) for k, v in rule["annotations"].items()
                        },
                    }
                ],
            }
        ],
    }
    result = promtool_test(tmp_path, rendered[variant].rules_file, test)
    assert result.returncode == 0, result.stdout + result.stderr


def test_database_rules_follow_their_inputs(rendered):
    defaults = yaml.safe_load((ROOT / "roles" / "prometheus" / "defaults" / "main.yml").read_text())
    rules = rendered[DEFAULTS].rules
    regex = defaults["prometheus_alert_postgres_job_regex"]
    assert f'up{{job=~"{regex}"}}' in rules["PostgresDown"]["expr"]
    assert f'up{{job!~"{regex}"}}' in rules["TargetDown"]["expr"]
    assert rules["PostgresDown"]["for"] == defaults["prometheus_alert_postgres_down_for"]
    connections = rules["PostgresTooManyConnections"]
    assert threshold(connections) == defaults["prometheus_alert_postgres_connections_ratio"]
    assert connections["for"] == defaults["prometheus_alert_postgres_connections_for"]
    assert threshold(rules["BackupTooOld"]) == defaults["prometheus_alert_backup_max_age_seconds"]
    assert rules["BackupTooOld"]["for"] == defaults["prometheus_alert_backup_for"]
    restore = rules["BackupRestoreFailed"]
    assert threshold(restore) == defaults["prometheus_alert_restore_check_max_age_seconds"]
    assert restore["for"] == defaults["prometheus_alert_restore_check_for"]
    assert "26h" in rules["BackupTooOld"]["annotations"]["description"]
    assert "8d" in restore["annotations"]["description"]


PER_HOST_PROBE = 'probe_http_status_code{job="blackbox-http"} == 0 or probe_success{job="blackbox-http"} == 0'


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v not in SITE_VARIANTS])
def test_without_site_urls_website_down_stays_on_the_web_hosts(rendered, variant):
    rule = rendered[variant].rules["WebsiteDown"]
    assert rule["expr"] == PER_HOST_PROBE
    assert rule["labels"] == {"severity": "critical"}
    assert rule["annotations"]["description"] == (
        "The blackbox probe of {{ $labels.url }} on {{ $labels.instance }} has failed for "
        f"{rule['for']}."
    )


def test_with_site_urls_website_down_pages_on_the_public_url_and_web_hosts_warn(rendered):
    behind = rendered[FRONTEND].rules
    alone = rendered["production"].rules
    site_job = f"{FRONTEND.split('+')[0]}-site"
    assert behind["WebsiteDown"]["expr"] == (
        f'probe_http_status_code{{job="{site_job}"}} == 0 or probe_success{{job="{site_job}"}} == 0'
    )
    assert behind["WebsiteDown"]["labels"] == {"severity": "critical"}
    # What WebsiteDown checked without a frontend, now a warning with the same `for`.
    assert behind["WebHostDown"]["expr"] == alone["WebsiteDown"]["expr"] == PER_HOST_PROBE
    assert behind["WebHostDown"]["labels"] == {"severity": "warning"}
    assert behind["WebHostDown"]["for"] == behind["WebsiteDown"]["for"] == alone["WebsiteDown"]["for"]
    # The public URL the rule reads is the one prometheus.yml probes under that job.
    site = [j for j in rendered[FRONTEND].config["scrape_configs"] if j["job_name"] == site_job]
    assert [c["targets"] for c in site[0]["static_configs"]] == [
        [f"https://{rendered[FRONTEND].knobs['lookout_public_name']}/health"]
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_backend_down_follows_its_inputs(rendered, variant):
    rule = rendered[variant].rules["BackendDown"]
    backend = ROLE_DEFAULTS["prometheus_alert_backend_name"]
    assert f'haproxy_server_status{{proxy="{backend}",state="DOWN"}}' in rule["expr"]
    # The wiring gives it the same `for` as the per-host probe it silences (group_vars/all/prometheus.yml).
    assert rule["for"] == rendered[variant].rules["WebsiteDown"]["for"]
    assert rule["labels"] == {"severity": "warning"}


@pytest.mark.parametrize("state", ["DRAIN", "MAINT", "UP", "NOLB"])
def test_backend_down_ignores_servers_not_down(rendered, state, tmp_path):
    """A server held in one state for far longer than `for`: only DOWN alerts."""
    rule = rendered[DEFAULTS].rules["BackendDown"]
    steps = seconds(rule["for"]) // STEP + 10
    labels = {"job": "test-haproxy", "instance": "lb1:8405", "proxy": "conduit", "server": WEB}
    series = [
        {
            "series": series_selector("haproxy_server_status", {**labels, "state": s}),
            "values": " ".join(["1" if s == state else "0"] * steps),
        }
        for s in ("DOWN", "UP", "MAINT", "DRAIN", "NOLB")
    ]
    test = {
        "interval": f"{STEP}s",
        "input_series": series,
        "alert_rule_test": [
            {"eval_time": f"{(steps - 1) * STEP}s", "alertname": "BackendDown", "exp_alerts": []}
        ],
    }
    result = promtool_test(tmp_path, rendered[DEFAULTS].rules_file, test)
    assert result.returncode == 0, result.stdout + result.stderr
