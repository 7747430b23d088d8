"""Merge the parts of one k6 load test that several load hosts ran side by side.

Each load host ran one execution segment of the same test (`--execution-segment`,
`--execution-segment-sequence`) and left, in the controller directory `--dir`:

- `<host>-summary.json`: k6's `--summary-export` of its part;
- `<host>-samples.csv.gz`: k6's `--out csv` of its part (every sample, times in ms since the epoch);
- `<host>-k6.log`: its log, whose first line (written by the role before k6 starts) says when it started.

The merged summary has the shape of k6's `--summary-export` (plus a `lookout` section on the parts):

- counters: counts and per-second rates summed;
- rates (`http_req_failed`, `checks`): passes and fails summed, the rate recomputed from them;
- gauges (`vus`, `vus_max`): summed (the segments split the virtual users between the parts);
- trends (`http_req_duration`, ...): every statistic computed again from the parts' raw samples, never
  averaged over parts (percentiles interpolated between the two nearest samples, as k6 does);
- checks: passes and fails summed per check;
- thresholds: each part's threshold expressions judged again on the merged metrics.

The parts' segments must cover the whole test exactly once. Prints the figures of the merged run as JSON
on stdout and writes the merged summary to `--out`. Exit status: 0 when every threshold holds, 99 (as k6)
when one failed, 2 when the parts cannot be merged (a part missing, incomplete or from another run).

    k6_merge.py --dir artifacts/loadtest/testing --out artifacts/loadtest/testing/summary.json \\
        --start-at-ms 1796025000000 --part load1=0:1/2 --part load2=1/2:1
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import operator
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from urllib.parse import parse_qsl

THRESHOLDS_FAILED = 99
CANNOT_MERGE = 2
# The first line of a part's log (roles/k6/vars/main.yml, __k6_wait_for_start).
STARTED = re.compile(r"^lookout: k6 started at (?P<at>\d+) ms, start time (?P<start>\d+) ms$")
THRESHOLD = re.compile(
    r"^\s*(?P<agg>avg|min|max|med|count|rate|value|p\((?P<pct>\d+(?:\.\d+)?)\))\s*"
    r"(?P<op>===|==|!=|<=|>=|<|>)\s*(?P<value>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$"
)
OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
}
SUBMETRIC = re.compile(r"^(?P<name>[^{]+)\{(?P<tags>.*)\}$")


class MergeError(Exception):
    """The parts cannot be merged into one result."""


@dataclass
class Part:
    host: str
    segment: tuple[Fraction, Fraction]
    summary: dict = field(default_factory=dict)
    started_at_ms: int = 0
    samples: dict[str, list[float]] = field(default_factory=dict)


def parse_fraction(text: str) -> Fraction:
    text = text.strip()
    if text.endswith("%"):
        return Fraction(text[:-1]) / 100
    return Fraction(text)


def parse_segment(text: str) -> tuple[Fraction, Fraction]:
    """`1/3:2/3` (k6's notation; a single value `v` means `0:v`) as two fractions."""
    try:
        start, _, end = text.rpartition(":")
        segment = (parse_fraction(start) if start else Fraction(0), parse_fraction(end))
    except (ValueError, ZeroDivisionError) as error:
        raise MergeError(f"segment {text!r} is not k6's from:to notation") from error
    if not 0 <= segment[0] < segment[1] <= 1:
        raise MergeError(f"segment {text!r} is not a part of 0:1")
    return segment


def check_tiling(parts: list[Part]) -> None:
    """The segments follow each other from 0 to 1, each once: together they are the whole test."""
    edge = Fraction(0)
    for part in sorted(parts, key=lambda p: p.segment):
        if part.segment[0] != edge:
            raise MergeError(
                f"segment of {part.host} starts at {part.segment[0]}, expected {edge}: the parts' segments "
                "must cover 0:1 once"
            )
        edge = part.segment[1]
    if edge != 1:
        raise MergeError(f"the parts' segments end at {edge}, not 1: a part of the test is missing")


def percentile(ordered: list[float], fraction: float) -> float:
    """k6's percentile: linear interpolation between the two samples around fraction * (n - 1)."""
    if not ordered:
        return 0.0
    if len(ordered) == 1:
        return ordered[0]
    position = fraction * (len(ordered) - 1)
    low, high = ordered[math.floor(position)], ordered[math.ceil(position)]
    return low + (high - low) * (position - math.floor(position))


TREND_STATS = {
    "avg": lambda ordered: math.fsum(ordered) / len(ordered),
    "min": lambda ordered: ordered[0],
    "max": lambda ordered: ordered[-1],
    "med": lambda ordered: percentile(ordered, 0.5),
}


def trend_stat(ordered: list[float], stat: str) -> float:
    """One statistic (avg, min, max, med, count or p(N)) of sorted samples; 0 when there are none."""
    if stat == "count":
        return len(ordered)
    match = re.fullmatch(r"p\((\d+(?:\.\d+)?)\)", stat)
    if stat not in TREND_STATS and not match:
        raise MergeError(f"unknown trend statistic {stat!r}")
    if not ordered:
        return 0.0
    return (
        TREND_STATS[stat](ordered)
        if stat in TREND_STATS
        else percentile(ordered, float(match.group(1)) / 100)
    )


def kind(metric: dict) -> str:
    keys = set(metric) - {"thresholds"}
    if {"passes", "fails"} <= keys:
        return "rate"
    if {"count", "rate"} == keys:
        return "counter"
    if {"value", "min", "max"} == keys:
        return "gauge"
    return "trend"


def submetric_filter(name: str) -> tuple[str, dict[str, str]]:
    """`http_req_duration{expected_response:true}` -> the metric's name and the tags its samples carry."""
    match = SUBMETRIC.match(name)
    if not match:
        return name, {}
    tags = {}
    for pair in match.group("tags").split(","):
        key, _, value = pair.partition(":")
        tags[key.strip()] = value.strip().strip("\"'`")
    return match.group("name"), tags


def tag_value(row: list[str], extra: dict[str, str] | None, key: int | str) -> str:
    """A sample's tag: in its own CSV column (key: the column's index) or among the extra tags."""
    return row[key] if isinstance(key, int) else (extra or {}).get(key, "")


def read_samples(path: Path, wanted: list[str]) -> dict[str, list[float]]:
    """The values of every wanted trend (or trend submetric) in one part's CSV samples."""
    values: dict[str, list[float]] = {name: [] for name in wanted}
    try:
        with gzip.open(path, "rt", newline="") as handle:
            rows = csv.reader(handle)
            header = next(rows)
            column = {name: i for i, name in enumerate(header)}
            name_at, value_at = column["metric_name"], column["metric_value"]
            extra_at = column.get("extra_tags")
            # Per metric name: (the list its values go to, [(column or extra tag, value)] its samples carry).
            filters: dict[str, list[tuple[list[float], list[tuple[int | str, str]]]]] = {}
            for name in wanted:
                base, tags = submetric_filter(name)
                wanted_tags = [(column.get(key, key), value) for key, value in tags.items()]
                filters.setdefault(base, []).append((values[name], wanted_tags))
            for row in rows:
                targets = filters.get(row[name_at])
                if not targets:
                    continue
                value = float(row[value_at])
                extra: dict[str, str] | None = None
                for into, tags in targets:
                    if tags and extra is None and any(isinstance(key, str) for key, _ in tags):
                        extra = dict(parse_qsl(row[extra_at])) if extra_at is not None else {}
                    if all(tag_value(row, extra, key) == v for key, v in tags):
                        into.append(value)
    except (OSError, EOFError, StopIteration, csv.Error, KeyError, IndexError, ValueError) as error:
        raise MergeError(f"samples {path} unreadable: {error}") from error
    return values


def read_started(path: Path, start_at_ms: int | None) -> int:
    try:
        with path.open() as handle:
            first = handle.readline().strip()
    except OSError as error:
        raise MergeError(f"log {path} unreadable: {error}") from error
    match = STARTED.match(first)
    if not match:
        raise MergeError(f"log {path} does not say when k6 started (first line {first!r})")
    if start_at_ms is not None and int(match.group("start")) != start_at_ms:
        raise MergeError(
            f"log {path} is of the run that started at {match.group('start')} ms, "
            f"not of this one ({start_at_ms} ms)"
        )
    return int(match.group("at"))


def load_part(directory: Path, host: str, segment: str, start_at_ms: int | None) -> Part:
    part = Part(host=host, segment=parse_segment(segment))
    summary_file = directory / f"{host}-summary.json"
    try:
        part.summary = json.loads(summary_file.read_text())
        metrics = part.summary["metrics"]
    except (OSError, ValueError, KeyError) as error:
        raise MergeError(f"part {host}: no summary in {summary_file} ({error})") from error
    part.started_at_ms = read_started(directory / f"{host}-k6.log", start_at_ms)
    trends = sorted(name for name, metric in metrics.items() if kind(metric) == "trend")
    part.samples = read_samples(directory / f"{host}-samples.csv.gz", trends)
    # One http_req_duration sample per request: the raw results of the part are complete.
    requests = metrics.get("http_reqs", {}).get("count")
    durations = len(part.samples.get("http_req_duration", []))
    if requests is not None and "http_req_duration" in part.samples and durations != requests:
        raise MergeError(
            f"part {host}: {durations} http_req_duration samples for {requests} requests in its summary "
            "(samples incomplete)"
        )
    return part


def merge_checks(groups: list[dict]) -> dict:
    """k6's root_group (checks and nested groups): passes and fails summed per check."""
    merged = {key: groups[0][key] for key in ("name", "path", "id") if key in groups[0]}
    checks: dict[str, dict] = {}
    for group in groups:
        for name, check in (group.get("checks") or {}).items():
            into = checks.setdefault(name, {**check, "passes": 0, "fails": 0})
            into["passes"] += check.get("passes", 0)
            into["fails"] += check.get("fails", 0)
    children: dict[str, list[dict]] = {}
    for group in groups:
        for name, child in (group.get("groups") or {}).items():
            children.setdefault(name, []).append(child)
    merged["groups"] = {name: merge_checks(parts) for name, parts in children.items()}
    merged["checks"] = checks
    return merged


def merge_metric(name: str, parts: list[Part]) -> tuple[dict, list[float] | None]:
    present = [p.summary["metrics"][name] for p in parts if name in p.summary["metrics"]]
    kinds = {kind(m) for m in present}
    if len(kinds) != 1:
        raise MergeError(f"metric {name} has different kinds in the parts' summaries: {sorted(kinds)}")
    metric_kind = kinds.pop()
    if metric_kind == "counter":
        return {"count": sum(m["count"] for m in present), "rate": sum(m["rate"] for m in present)}, None
    if metric_kind == "gauge":
        return {key: sum(m[key] for m in present) for key in ("value", "min", "max")}, None
    if metric_kind == "rate":
        passes, fails = sum(m["passes"] for m in present), sum(m["fails"] for m in present)
        return {
            "passes": passes,
            "fails": fails,
            "value": passes / (passes + fails) if passes + fails else 0,
        }, None
    ordered = sorted(value for part in parts for value in part.samples.get(name, []))
    stats = sorted({key for m in present for key in m if key != "thresholds"})
    return {stat: trend_stat(ordered, stat) for stat in stats}, ordered


def judge(expression: str, metric: dict, ordered: list[float] | None) -> bool:
    """True when the threshold holds on the merged metric."""
    match = THRESHOLD.match(expression)
    if not match:
        raise MergeError(f"threshold {expression!r} is not an expression the merge can judge")
    aggregation = match.group("agg")
    if ordered is not None:
        observed = trend_stat(ordered, aggregation)
    elif aggregation in metric:
        observed = metric[aggregation]
    elif aggregation == "rate" and "value" in metric:
        observed = metric["value"]
    else:
        raise MergeError(f"threshold {expression!r} asks for {aggregation}, which the metric has not")
    return OPERATORS[match.group("op")](observed, float(match.group("value")))


def merge(parts: list[Part], start_at_ms: int | None = None) -> dict:
    if not parts:
        raise MergeError("no parts to merge")
    check_tiling(parts)
    thresholds: dict[str, list[str]] = {}
    for part in parts:
        for name, metric in part.summary["metrics"].items():
            expressions = sorted(metric.get("thresholds", {}))
            if thresholds.setdefault(name, expressions) != expressions:
                raise MergeError(
                    f"part {part.host} judges {name} by {expressions}, another part by {thresholds[name]}"
                )
    metrics, failed = {}, []
    for name in sorted({n for part in parts for n in part.summary["metrics"]}):
        metric, ordered = merge_metric(name, parts)
        if thresholds.get(name):
            metric["thresholds"] = {}
            for expression in thresholds[name]:
                holds = judge(expression, metric, ordered)
                # As in k6's summary export: true when the threshold was crossed.
                metric["thresholds"][expression] = not holds
                if not holds:
                    failed.append(f"{name} {expression}")
        metrics[name] = metric
    started = [p.started_at_ms for p in parts]
    return {
        "metrics": metrics,
        "root_group": merge_checks([p.summary.get("root_group", {}) for p in parts]),
        "lookout": {
            "start_at_ms": start_at_ms,
            "start_spread_ms": max(started) - min(started),
            # How long after the common start the last part began (a start task slower than k6_start_delay).
            "late_start_ms": max(0, max(started) - start_at_ms) if start_at_ms is not None else None,
            "failed_thresholds": failed,
            "parts": [
                {
                    "host": p.host,
                    "segment": f"{p.segment[0]}:{p.segment[1]}",
                    "started_at_ms": p.started_at_ms,
                    "requests": p.summary["metrics"].get("http_reqs", {}).get("count", 0),
                    "iterations": p.summary["metrics"].get("iterations", {}).get("count", 0),
                    "thresholds_failed_on_the_part_alone": [
                        f"{name} {expr}"
                        for name, metric in sorted(p.summary["metrics"].items())
                        for expr, crossed in sorted(metric.get("thresholds", {}).items())
                        if crossed
                    ],
                }
                for p in sorted(parts, key=lambda p: p.segment)
            ],
        },
    }


def figures(merged: dict) -> dict:
    """The figures the play shows (the same names as the role's report of one part)."""
    metrics = merged["metrics"]
    return {
        "requests": metrics.get("http_reqs", {}).get("count", 0),
        "requests_per_second": round(metrics.get("http_reqs", {}).get("rate", 0), 2),
        "failed_request_rate": round(metrics.get("http_req_failed", {}).get("value", 0), 4),
        "p95_ms": round(metrics.get("http_req_duration", {}).get("p(95)", 0), 2),
        "checks_passed": metrics.get("checks", {}).get("passes", 0),
        "checks_failed": metrics.get("checks", {}).get("fails", 0),
        "iterations": metrics.get("iterations", {}).get("count", 0),
        "max_vus": metrics.get("vus_max", {}).get("max", 0),
        "failed_thresholds": merged["lookout"]["failed_thresholds"],
        "start_spread_ms": merged["lookout"]["start_spread_ms"],
        "late_start_ms": merged["lookout"]["late_start_ms"],
        "parts": [
            {key: part[key] for key in ("host", "segment", "requests", "started_at_ms")}
            for part in merged["lookout"]["parts"]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dir", type=Path, required=True, help="directory holding the parts' files")
    parser.add_argument("--out", type=Path, help="where to write the merged summary (JSON)")
    parser.add_argument(
        "--start-at-ms", type=int, help="the run's common start time; checks the logs are of it"
    )
    parser.add_argument(
        "--part",
        action="append",
        required=True,
        metavar="HOST=SEGMENT",
        help="a part: load host and its segment",
    )
    args = parser.parse_args(argv)
    try:
        parts = []
        for spec in args.part:
            host, sep, segment = spec.partition("=")
            if not sep or not host:
                raise MergeError(f"--part {spec!r} is not HOST=SEGMENT")
            parts.append(load_part(args.dir, host, segment, args.start_at_ms))
        merged = merge(parts, args.start_at_ms)
    except MergeError as error:
        print(f"k6 merge: {error}", file=sys.stderr)
        return CANNOT_MERGE
    if args.out:
        args.out.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    report = figures(merged)
    report["summary"] = str(args.out) if args.out else None
    print(json.dumps(report, sort_keys=True))
    return THRESHOLDS_FAILED if merged["lookout"]["failed_thresholds"] else 0


if __name__ == "__main__":
    sys.exit(main())
