"""`promtool test rules` for every shipped alert, with the role defaults and each environment's thresholds.

Each scenario feeds series that cross the alert's threshold at a known sample, and checks with promtool:
the condition starts to hold exactly there (PromQL test), the alert is silent one evaluation before its
`for` has elapsed, fires with its labels and annotations once it has, and is resolved when the series
recover. The thresholds come from the rendered rule itself (test_thresholds pins them to the inputs).

Series values are floats, None for no sample (`_`) and STALE for the staleness marker a failed scrape
leaves on every series of its target.

The certificate alerts (CertificateExpiringSoon, TLSProbeFailing) exist where lookout_tls_enabled gives
Prometheus TLS listeners to probe: development, testing, production and FRONTEND.

FRONTEND (production behind a frontend host) has site URLs: its WebsiteDown reads the public URL's probe
and WebHostDown the per-host probes; without site URLs WebHostDown does not exist and WebsiteDown is the
seed's per-host rule.
"""

import math
import re
from dataclasses import dataclass, field

import pytest
import yaml
from controller_helpers import ENVIRONMENTS, ROOT, knobs
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
    "Watchdog",
    "AlertmanagerNotificationsFailing",
    "PrometheusNotificationsDropped",
    "PrometheusNotificationQueueFilling",
    "PrometheusAlertmanagerUnreachable",
    "AlertmanagerClusterMembersMissing",
    "PrometheusConfigReloadFailed",
    "AlertmanagerConfigReloadFailed",
    "PrometheusRuleEvaluationFailures",
    "PrometheusTSDBCompactionsFailed",
    "PrometheusStorageFilling",
    "CertificateExpiringSoon",
    "TLSProbeFailing",
)
# Always firing: it has its own test (test_watchdog_always_fires_with_only_its_severity).
WATCHDOG = "Watchdog"
HEARTBEAT = "heartbeat"
VARIANTS = (DEFAULTS, *ENVIRONMENTS, FRONTEND)
# Variants with site URLs, the only ones with WebHostDown.
SITE_VARIANTS = (FRONTEND,)
# Variants with TLS listeners to probe (FRONTEND is production's knobs), the only ones with the
# certificate alerts.
TLS_VARIANTS = (*(env for env in ENVIRONMENTS if knobs(env)["lookout_tls_enabled"]), FRONTEND)
TLS_ALERTS = ("CertificateExpiringSoon", "TLSProbeFailing")
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
    probe's `instance` is its URL. The rule is one alert per probed target (job, instance): a web host's two
    failing pages are one alert, two site URLs two."""
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
    targets = [{"job": job, "instance": i} for i in dict.fromkeys((refused["instance"], failing["instance"]))]
    condition = [[(target, 0.0) for target in targets] if up <= i < up + down else [] for i in range(length)]
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


def _window(rule: dict) -> int:
    return seconds(re.search(r"\[(\w+)\]", rule["expr"]).group(1))


def counter_rising(rule: dict, hold: int, metric: str, labels: dict, keep: tuple[str, ...]) -> Scenario:
    """A counter of `labels` flat for a full window, rising for longer than `for`, flat again; a sibling
    series (another `reason`, as newer Alertmanagers add) stays flat and is summed away, and the same
    counter of another instance stays flat (quiet). The alert keeps the labels `keep`."""
    window = _window(rule)
    calm, bad, after = window // STEP + 2, hold + 4, window // STEP + 4
    length = calm + bad + after
    failures_per_second = 0.2
    values = phases((calm, 0.0), (bad, failures_per_second), (after, 0.0))
    quiet = {**labels, "instance": "quiet:1"}
    series = {
        series_selector(metric, {**labels, "reason": "serverError"}): values,
        series_selector(metric, {**labels, "reason": "clientError"}): phases((length, 0.0)),
        series_selector(metric, {**quiet, "reason": "serverError"}): phases((length, 0.0)),
    }
    alert = {k: v for k, v in labels.items() if k in keep}
    condition = []
    for i in range(length):
        value = rate(values, i, window)
        condition.append([(alert, value)] if value is not None and value > 0 else [])
    return Scenario(series, condition, quiet=("quiet:1",))


def alertmanager_notifications_failing(rule: dict, hold: int) -> Scenario:
    """mon1's requests to Slack fail (each attempt counts) while no notification has been given up yet;
    mon2 gives notifications up (the other counter) at the same time."""
    keep = ("job", "instance", "integration")
    attempts = {"job": "alertmanager", "instance": "mon1:9093", "integration": "slack"}
    given_up = {**attempts, "instance": "mon2:9093"}
    requests = counter_rising(rule, hold, "alertmanager_notification_requests_failed_total", attempts, keep)
    notifications = counter_rising(rule, hold, "alertmanager_notifications_failed_total", given_up, keep)
    length = len(requests.condition)
    flat = phases((length, 0.0))
    series = {
        **requests.series,
        **notifications.series,
        series_selector("alertmanager_notifications_failed_total", attempts): flat,
        series_selector("alertmanager_notification_requests_failed_total", given_up): flat,
    }
    condition = [a + b for a, b in zip(requests.condition, notifications.condition, strict=True)]
    return Scenario(series, condition, quiet=requests.quiet)


def prometheus_notifications_dropped(rule: dict, hold: int) -> Scenario:
    labels = {"job": "prometheus", "instance": "mon1:9090"}
    return counter_rising(rule, hold, "prometheus_notifications_dropped_total", labels, ("job", "instance"))


def prometheus_alertmanager_unreachable(rule: dict, hold: int) -> Scenario:
    labels = {"job": "prometheus", "instance": "mon1:9090", "alertmanager": "http://mon2:9093/api/v2/alerts"}
    return counter_rising(
        rule, hold, "prometheus_notifications_errors_total", labels, ("job", "instance", "alertmanager")
    )


def prometheus_rule_evaluation_failures(rule: dict, hold: int) -> Scenario:
    labels = {
        "job": "prometheus",
        "instance": "mon1:9090",
        "rule_group": "/etc/prometheus/lookout.rules.yml;lookout-web",
    }
    return counter_rising(
        rule, hold, "prometheus_rule_evaluation_failures_total", labels, ("job", "instance", "rule_group")
    )


def prometheus_notification_queue_filling(rule: dict, hold: int) -> Scenario:
    limit = threshold(rule)
    capacity = 10000.0
    full = {"job": "prometheus", "instance": "mon1:9090"}
    calm = {"job": "prometheus", "instance": "mon2:9090"}
    ok, high, after = 4, hold + 4, 8
    length = ok + high + after
    used = capacity * (limit + (1 - limit) / 2)
    series = {
        series_selector("prometheus_notifications_queue_length", full): gauge(
            (ok, 0), (high, used), (after, 0)
        ),
        series_selector("prometheus_notifications_queue_capacity", full): gauge((length, capacity)),
        # Busy, but below the share.
        series_selector("prometheus_notifications_queue_length", calm): gauge((length, capacity * limit / 2)),
        series_selector("prometheus_notifications_queue_capacity", calm): gauge((length, capacity)),
    }
    condition = [[(full, used / capacity)] if ok <= i < ok + high else [] for i in range(length)]
    return Scenario(series, condition, quiet=("mon2:9090",))


def alertmanager_cluster_members_missing(rule: dict, hold: int) -> Scenario:
    """The cluster size is the rule's threshold: one member lost below it warns; a member at full size
    stays quiet."""
    size = int(threshold(rule))
    lonely = {"job": "alertmanager", "instance": "mon1:9093"}
    whole = {"job": "alertmanager", "instance": "mon2:9093"}
    ok, missing, after = 4, hold + 4, 8
    length = ok + missing + after
    series = {
        series_selector("alertmanager_cluster_members", lonely): gauge(
            (ok, size), (missing, size - 1), (after, size)
        ),
        series_selector("alertmanager_cluster_members", whole): gauge((length, size)),
    }
    condition = [[(lonely, size - 1)] if ok <= i < ok + missing else [] for i in range(length)]
    return Scenario(series, condition, quiet=("mon2:9093",))


def reload_failed(metric: str, job: str, port: int):
    def scenario(rule: dict, hold: int) -> Scenario:
        failed = {"job": job, "instance": f"mon1:{port}"}
        fine = {"job": job, "instance": f"mon2:{port}"}
        ok, bad, after = 4, hold + 4, 8
        length = ok + bad + after
        series = {
            series_selector(metric, failed): gauge((ok, 1), (bad, 0), (after, 1)),
            series_selector(metric, fine): gauge((length, 1)),
        }
        condition = [[(failed, 0.0)] if ok <= i < ok + bad else [] for i in range(length)]
        return Scenario(series, condition, quiet=(f"mon2:{port}",))

    return scenario


def prometheus_tsdb_compactions_failed(rule: dict, hold: int) -> Scenario:
    """One failed compaction: the alert fires at once and stays while the failure is in the window."""
    window = _window(rule)
    steps = window // STEP
    failing = {"job": "prometheus", "instance": "mon1:9090"}
    fine = {"job": "prometheus", "instance": "mon2:9090"}
    calm, after = steps + 2, steps + 8
    length = calm + after
    values = [0.0] * calm + [1.0] * after
    series = {
        series_selector("prometheus_tsdb_compactions_failed_total", failing): values,
        series_selector("prometheus_tsdb_compactions_failed_total", fine): [0.0] * length,
    }
    condition = []
    for i in range(length):
        increase = None if i < steps else values[i] - values[i - steps]
        condition.append([(failing, increase)] if increase else [])
    return Scenario(series, condition, quiet=("mon2:9090",))


def predict_linear(values: list[float], index: int, window: int, horizon: int) -> float | None:
    """Prometheus 2's predict_linear at sample `index`: least squares over the samples of the window (its
    start included), the line's value `horizon` seconds after the evaluation."""
    first = max(0, index - window // STEP)
    ys = values[first : index + 1]
    if len(ys) < 2:
        return None
    if all(y == ys[0] for y in ys):
        return ys[0]
    xs = [(j - index) * STEP for j in range(first, index + 1)]
    n = len(xs)
    sum_x, sum_y = sum(xs), sum(ys)
    slope = (sum(x * y for x, y in zip(xs, ys, strict=True)) - sum_x * sum_y / n) / (
        sum(x * x for x in xs) - sum_x * sum_x / n
    )
    return sum_y / n - slope * sum_x / n + slope * horizon


def _tsdb_terms(rule: dict) -> tuple[float, int, int, str, str | None]:
    """The rule's free share, prediction window and horizon, its mount point, and a node exporter its
    instance filter matches (None: no filter)."""
    ratio = threshold(rule)
    _predict_ratio(rule)
    window = _window(rule)
    horizon = int(re.search(r"\],\s*([0-9]+)\)", rule["expr"]).group(1))
    mountpoint = re.search(r'mountpoint="([^"]+)"', rule["expr"]).group(1)
    instances = re.search(r'instance=~"([^"]+)"', rule["expr"])
    # The first alternative of the PromQL string's regex: its backslashes escaped, its dots too.
    first = instances.group(1).split("|")[0] if instances else None
    instance = first.replace("\\\\", "\\").replace("\\.", ".") if first else None
    return ratio, window, horizon, mountpoint, instance


def _predict_ratio(rule: dict) -> float:
    """The free share below which the growth part holds (the rule's second threshold)."""
    found = re.findall(r"<\s*([0-9.]+)\s+and\s+predict_linear", rule["expr"])
    assert len(found) == 1, f"no free share before the prediction in {rule['expr']}"
    return float(found[0])


def storage_filling(rule: dict, series_of: dict, length: int) -> list[list[tuple[dict, float]]]:
    """Where the rule holds: free share below the ratio, or below the predict share with the window's
    growth emptying the filesystem within the horizon; the value is the free share."""
    ratio, window, horizon, _, _ = _tsdb_terms(rule)
    predict_ratio = _predict_ratio(rule)
    condition = []
    for i in range(length):
        holding = []
        for labels, (avail, size) in series_of.items():
            share = avail[i] / size
            predicted = predict_linear(avail, i, window, horizon)
            if share < ratio or (share < predict_ratio and predicted is not None and predicted < 0):
                holding.append((dict(labels), share))
        condition.append(holding)
    return condition


def _tsdb_series(rule: dict, avail: list[float], size: float) -> tuple[dict, dict, tuple[str, ...]]:
    """The TSDB filesystem of a monitoring host with these free bytes, and filesystems that must stay quiet
    whatever their space: another mount point of the host, and (with an instance filter) a host that is not
    a monitoring host."""
    _, _, _, mountpoint, instance = _tsdb_terms(rule)
    base = {"job": "node", "device": "/dev/vda1", "fstype": "ext4"}
    tsdb = {**base, "instance": instance or "mon1:9100", "mountpoint": mountpoint}
    low = [size * 0.01] * len(avail)
    others = [{**tsdb, "device": "/dev/vda2", "mountpoint": "/srv/elsewhere"}]
    if instance:
        others.append({**tsdb, "instance": "not-a-monitoring-host:9100"})
    series = {}
    for labels, values in ((tsdb, avail), *((o, low) for o in others)):
        series[series_selector("node_filesystem_avail_bytes", labels)] = values
        series[series_selector("node_filesystem_size_bytes", labels)] = [size] * len(avail)
    return (
        series,
        {tuple(sorted(tsdb.items())): (avail, size)},
        tuple(o["instance"] + o["mountpoint"] for o in others),
    )


def prometheus_storage_filling(rule: dict, hold: int) -> Scenario:
    """Free space drops below the share and comes back."""
    ratio = threshold(rule)
    size = 100e9
    ok, low, after = 4, hold + 4, 8
    avail = gauge((ok, size / 2), (low, size * ratio / 2), (after, size / 2))
    series, tracked, quiet = _tsdb_series(rule, avail, size)
    return Scenario(series, storage_filling(rule, tracked, len(avail)), quiet=quiet)


def _tls_job(rule: dict) -> str:
    return re.search(r'job="([^"]+)"', rule["expr"]).group(1)


def certificate_expiring_soon(rule: dict, hold: int) -> Scenario:
    """A listener's certificate (its end a timestamp; promtool's clock starts at 0) is far from its end, then
    one whose end is within the limit is served (the renewal did not happen), then a renewed one. Another
    listener's stays far all along."""
    limit = threshold(rule)
    job = _tls_job(rule)
    listener = {"job": job, "instance": "mon1:9100"}
    other = {"job": job, "instance": "db1:9187"}
    far, near = 3 * limit, limit / 2
    ends = gauge((4, far), (hold + 6, near), (8, far))
    series = {
        series_selector("probe_ssl_earliest_cert_expiry", listener): ends,
        series_selector("probe_ssl_earliest_cert_expiry", other): gauge((len(ends), far)),
    }
    condition = [[(listener, end - i * STEP)] if end - i * STEP < limit else [] for i, end in enumerate(ends)]
    return Scenario(series, condition, quiet=("db1:9187",))


def tls_probe_failing(rule: dict, hold: int) -> Scenario:
    """The TLS probe of a listener fails (its certificate expired) and succeeds again; a failing probe of
    another job (a web host's page) is not this alert's."""
    listener = {"job": _tls_job(rule), "instance": "mon1:9100"}
    page = {"job": ROLE_DEFAULTS["prometheus_blackbox_job_name"], "instance": WEB}
    up, down = 4, hold + 4
    series = {
        series_selector("probe_success", listener): gauge((up, 1), (down, 0), (8, 1)),
        series_selector("probe_success", page): gauge((up + down + 8, 0)),
    }
    condition = [[(listener, 0.0)] if up <= i < up + down else [] for i in range(up + down + 8)]
    return Scenario(series, condition, quiet=(WEB,))


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
    "AlertmanagerNotificationsFailing": alertmanager_notifications_failing,
    "PrometheusNotificationsDropped": prometheus_notifications_dropped,
    "PrometheusNotificationQueueFilling": prometheus_notification_queue_filling,
    "PrometheusAlertmanagerUnreachable": prometheus_alertmanager_unreachable,
    "AlertmanagerClusterMembersMissing": alertmanager_cluster_members_missing,
    "PrometheusConfigReloadFailed": reload_failed(
        "prometheus_config_last_reload_successful", "prometheus", 9090
    ),
    "AlertmanagerConfigReloadFailed": reload_failed(
        "alertmanager_config_last_reload_successful", "alertmanager", 9093
    ),
    "PrometheusRuleEvaluationFailures": prometheus_rule_evaluation_failures,
    "PrometheusTSDBCompactionsFailed": prometheus_tsdb_compactions_failed,
    "PrometheusStorageFilling": prometheus_storage_filling,
    "CertificateExpiringSoon": certificate_expiring_soon,
    "TLSProbeFailing": tls_probe_failing,
}


def shipped(variant: str) -> list[str]:
    """The alerts a variant's rules must hold: WebHostDown only with site URLs, the certificate alerts only
    with TLS listeners."""
    return [
        a
        for a in ALERTS
        if (a != "WebHostDown" or variant in SITE_VARIANTS)
        and (a not in TLS_ALERTS or variant in TLS_VARIANTS)
    ]


def test_every_shipped_alert_has_a_scenario(rendered):
    assert sorted([*SCENARIOS, WATCHDOG]) == sorted(ALERTS)
    for variant in VARIANTS:
        assert sorted(rendered[variant].rules) == sorted(shipped(variant)), variant


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_alert_is_documented(rendered, variant):
    for name, rule in rendered[variant].rules.items():
        if name == WATCHDOG:
            assert rule["labels"] == {"severity": HEARTBEAT}, name
        else:
            assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"].endswith("#" + name.lower()), name


def _for(rule: dict) -> str:
    return rule.get("for", "0s")


@pytest.mark.parametrize(
    ("variant", "alert"),
    [(v, a) for v in VARIANTS for a in shipped(v) if a != WATCHDOG],
    ids=lambda x: x,
)
def test_alert_fires_after_for_and_resolves(rendered, variant, alert, tmp_path):
    rule = rendered[variant].rules[alert]
    hold = seconds(_for(rule)) // STEP
    assert hold * STEP == seconds(_for(rule)), f"{alert}: `for` must be a multiple of {STEP}s here"
    _check_scenario(rendered[variant], variant, alert, SCENARIOS[alert](rule, hold), tmp_path)


def _check_scenario(rules, variant: str, alert: str, scenario: Scenario, tmp_path) -> None:
    """The condition starts to hold exactly where the scenario says, the alert is silent one evaluation
    before its `for` has elapsed, fires with its labels and annotations once it has and while the condition
    holds, and is gone when the condition stops."""
    rule = rules.rules[alert]
    hold = seconds(_for(rule)) // STEP

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
            # Still firing at the last evaluation the condition holds.
            {"eval_time": at(end - 1), "alertname": alert, "exp_alerts": alerts(end - 1)},
            {"eval_time": at(end), "alertname": alert, "exp_alerts": []},
        ],
    }
    result = promtool_test(tmp_path, rules.rules_file, test)
    assert result.returncode == 0, f"{variant} {alert} (for {_for(rule)}):\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("variant", VARIANTS)
def test_storage_filling_fires_on_the_growth_before_the_free_share_is_low(rendered, variant, tmp_path):
    """The filesystem fills at a steady rate while its free share is still well above the threshold: the
    alert starts when the line through the last 6 hours reaches zero within the horizon, and ends when space
    is freed. The crossing falls half a step after a sample, so float rounding cannot move it."""
    rule = rendered[variant].rules["PrometheusStorageFilling"]
    ratio, _, horizon, _, _ = _tsdb_terms(rule)
    predict_ratio = _predict_ratio(rule)
    size = 100e9
    # A fifth of the filesystem in `horizon` seconds; the prediction reaches zero once a fifth is left.
    per_step = size / 5 * STEP / horizon
    crossing = round(0.1 * size / per_step)
    hold = seconds(_for(rule)) // STEP
    filling = crossing + hold + 4
    avail = [0.3 * size + per_step / 2 - i * per_step for i in range(filling)] + [0.95 * size] * 16
    assert min(avail) / size > ratio, "the free share must stay above the threshold here"
    assert max(avail[:filling]) / size < predict_ratio, "the growth part holds below the predict share only"
    series, tracked, quiet = _tsdb_series(rule, avail, size)
    scenario = Scenario(series, storage_filling(rule, tracked, len(avail)), quiet=quiet)
    holding = [bool(c) for c in scenario.condition]
    assert holding.index(True) == crossing + 1
    _check_scenario(rendered[variant], variant, "PrometheusStorageFilling", scenario, tmp_path)


@pytest.mark.parametrize("variant", VARIANTS)
def test_storage_filling_ends_when_a_dip_is_gone(rendered, variant, tmp_path):
    """A nearly empty filesystem is filled for a while and emptied again: the alert fires on the free share
    and ends with it, although the dip tilts the line through the last 6 hours downwards for hours."""
    rule = rendered[variant].rules["PrometheusStorageFilling"]
    ratio, _, _, _, _ = _tsdb_terms(rule)
    size = 100e9
    hold = seconds(_for(rule)) // STEP
    avail = [0.95 * size] * 60 + [ratio / 3 * size] * (hold + 4) + [0.95 * size] * 16
    series, tracked, quiet = _tsdb_series(rule, avail, size)
    scenario = Scenario(series, storage_filling(rule, tracked, len(avail)), quiet=quiet)
    holding = [bool(c) for c in scenario.condition]
    assert holding == [False] * 60 + [True] * (hold + 4) + [False] * 16
    _check_scenario(rendered[variant], variant, "PrometheusStorageFilling", scenario, tmp_path)


# Counters whose single increase (a failed attempt the retry recovers, the alerts Prometheus drops at its
# start, one failed rule evaluation) must not fire.
ONE_OFF = {
    "AlertmanagerNotificationsFailing": (
        "alertmanager_notification_requests_failed_total",
        {"job": "alertmanager", "instance": "mon1:9093", "integration": "slack"},
    ),
    "PrometheusNotificationsDropped": (
        "prometheus_notifications_dropped_total",
        {"job": "prometheus", "instance": "mon1:9090"},
    ),
    "PrometheusAlertmanagerUnreachable": (
        "prometheus_notifications_errors_total",
        {"job": "prometheus", "instance": "mon1:9090", "alertmanager": "http://mon2:9093/api/v2/alerts"},
    ),
    "PrometheusRuleEvaluationFailures": (
        "prometheus_rule_evaluation_failures_total",
        {"job": "prometheus", "instance": "mon1:9090", "rule_group": "g"},
    ),
}


@pytest.mark.parametrize(("variant", "alert"), [(v, a) for v in VARIANTS for a in ONE_OFF], ids=lambda x: x)
def test_a_single_failure_does_not_fire(rendered, variant, alert, tmp_path):
    """One increase of the counter: the condition holds (so the test can tell), but for less than `for`."""
    rule = rendered[variant].rules[alert]
    metric, labels = ONE_OFF[alert]
    window = _window(rule) // STEP
    before, after = window + 2, window + 8
    values = [0.0] * before + [1.0] * after
    test = {
        "interval": f"{STEP}s",
        "input_series": [
            {"series": series_selector(metric, labels), "values": " ".join(map(sample, values))}
        ],
        "promql_expr_test": [
            {
                "expr": f"count({rule['expr']})",
                "eval_time": f"{before * STEP}s",
                "exp_samples": [{"labels": "{}", "value": 1}],
            }
        ],
        "alert_rule_test": [
            {"eval_time": f"{i * STEP}s", "alertname": alert, "exp_alerts": []}
            for i in range(before, before + after)
        ],
    }
    result = promtool_test(tmp_path, rendered[variant].rules_file, test)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS)
def test_watchdog_always_fires_with_only_its_severity(rendered, variant, tmp_path):
    """No series at all (a server that scrapes nothing still has its alert path to prove): firing from the
    first evaluation on and at every later one, with no label but its severity, which routes it to the
    heartbeat receiver (the Alertmanager side matches alertname="Watchdog" and severity="heartbeat")."""
    rule = rendered[variant].rules[WATCHDOG]
    assert "for" not in rule
    expected = [
        {
            "exp_labels": {"severity": HEARTBEAT},
            "exp_annotations": {k: expand(v, {}, 1.0) for k, v in rule["annotations"].items()},
        }
    ]
    test = {
        "interval": f"{STEP}s",
        "input_series": [
            {"series": series_selector("up", {"job": "node", "instance": "a:9100"}), "values": "0x40"}
        ],
        "alert_rule_test": [
            {"eval_time": at, "alertname": WATCHDOG, "exp_alerts": expected} for at in ("0s", "1m", "10m")
        ],
    }
    result = promtool_test(tmp_path, rendered[variant].rules_file, test)
    assert result.returncode == 0, result.stdout + result.stderr
    # And the test would notice an alert that is not firing.
    test["alert_rule_test"] = [{"eval_time": "1m", "alertname": WATCHDOG, "exp_alerts": []}]
    assert promtool_test(tmp_path, rendered[variant].rules_file, test).returncode != 0


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_thresholds_follow_the_environment(rendered, env):
    rules = rendered[env].rules
    knob = rendered[env].knobs
    assert rules["WebsiteDown"]["for"] == knob["lookout_alert_website_down_for"]
    assert rules["HighRequestRate"]["for"] == knob["lookout_alert_high_request_rate_for"]
    assert threshold(rules["HighRequestRate"]) == float(knob["lookout_alert_high_request_rate"])
    if knob["lookout_tls_enabled"]:
        days = knob["lookout_alert_certificate_expiry_days"]
        assert threshold(rules["CertificateExpiringSoon"]) == days * 86400
        assert f'job="{env}-tls"' in rules["CertificateExpiringSoon"]["expr"]
        assert f'job="{env}-tls"' in rules["TLSProbeFailing"]["expr"]
    else:
        assert "CertificateExpiringSoon" not in rules


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


def _probe_failing(job: str) -> str:
    """Any probe of a target (job, instance) failing, one series per target."""
    return (
        f'min by (job, instance) (probe_http_status_code{{job="{job}"}}) == 0 '
        f'or min by (job, instance) (probe_success{{job="{job}"}}) == 0'
    )


PER_HOST_PROBE = _probe_failing("blackbox-http")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v not in SITE_VARIANTS])
def test_without_site_urls_website_down_stays_on_the_web_hosts(rendered, variant):
    rule = rendered[variant].rules["WebsiteDown"]
    assert rule["expr"] == PER_HOST_PROBE
    assert rule["labels"] == {"severity": "critical"}
    assert rule["annotations"]["description"] == (
        f"A blackbox probe of {{{{ $labels.instance }}}} (/, /health) has failed for {rule['for']}."
    )


def test_with_site_urls_website_down_pages_on_the_public_url_and_web_hosts_warn(rendered):
    behind = rendered[FRONTEND].rules
    alone = rendered["production"].rules
    site_job = f"{FRONTEND.split('+')[0]}-site"
    assert behind["WebsiteDown"]["expr"] == _probe_failing(site_job)
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


@pytest.mark.parametrize("variant", [DEFAULTS, "production", FRONTEND])
def test_a_web_hosts_pages_failing_at_different_evaluations_are_one_alert(rendered, variant, tmp_path):
    """/ fails first, /health two evaluations later, / recovers before /health: one alert per web host (one
    Slack message), pending from the first failure, firing `for` after it while any page fails, and gone
    when the last recovers. A split alert would reach Alertmanager twice, at different evaluations."""
    alert = "WebHostDown" if variant in SITE_VARIANTS else "WebsiteDown"
    rule = rendered[variant].rules[alert]
    hold = seconds(rule["for"]) // STEP
    page = {"job": "blackbox-http", "instance": WEB}
    root, health = {**page, "url": f"http://{WEB}/"}, {**page, "url": f"http://{WEB}/health"}
    up, late, down = 4, 2, hold + 4
    length = up + late + down + 8
    root_ok = gauge((up, 1), (late + down - 1, 0), (length - up - late - down + 1, 1))
    health_ok = gauge((up + late, 1), (down, 0), (length - up - late - down, 1))
    series = {}
    for labels, ok in ((root, root_ok), (health, health_ok)):
        series[series_selector("probe_success", labels)] = ok
        series[series_selector("probe_http_status_code", labels)] = [200 if v else 0 for v in ok]
    condition = [[(page, 0.0)] if not (root_ok[i] and health_ok[i]) else [] for i in range(length)]
    _check_scenario(rendered[variant], variant, alert, Scenario(series, condition), tmp_path)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_web_alerts_group_is_evaluated_at_the_environments_interval(rendered, env):
    """The group of WebsiteDown and the other web alerts carries its own interval (the knob); the other
    groups keep the global evaluation interval of prometheus.yml."""
    groups = yaml.safe_load(rendered[env].rules_file.read_text())["groups"]
    web = [g for g in groups if g["name"] == "lookout-web"]
    assert len(web) == 1 and "WebsiteDown" in [r.get("alert") for r in web[0]["rules"]]
    assert web[0]["interval"] == rendered[env].knobs["lookout_alert_web_evaluation_interval"]
    assert [g["name"] for g in groups if "interval" in g] == ["lookout-web"]


def test_without_the_input_the_web_alerts_group_takes_the_global_interval(rendered):
    groups = yaml.safe_load(rendered[DEFAULTS].rules_file.read_text())["groups"]
    assert [g["name"] for g in groups if "interval" in g] == []


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


def test_the_frontend_variant_has_an_ha_pair(rendered):
    """So that the scenarios above also judge a cluster of two and the TSDB disk alert's host filter (a
    filesystem of another host stays quiet there)."""
    rules = rendered[FRONTEND].rules
    assert int(threshold(rules["AlertmanagerClusterMembersMissing"])) == 2
    assert _tsdb_terms(rules["PrometheusStorageFilling"])[4] == "203.0.113.21:9100"
    assert _tsdb_terms(rendered[DEFAULTS].rules["PrometheusStorageFilling"])[4] is None
