#!/usr/bin/env python3
"""Runs every PromQL query of lookout's Grafana dashboards against a Prometheus.

Each panel target's ``expr`` is taken with the dashboard variables filled in: query variables become
their "All" value (``.*``; the dashboards match them with ``=~``), custom and constant variables their
current value, Grafana's interval variables fixed values (``$__rate_interval`` -> ``1m``, ``$__range`` ->
``1h``, ...). ``--var NAME=VALUE`` overrides any of them, e.g. ``--var env=demo``. Variable queries
(``label_values(selector, label)``) are checked too, as ``count by (label) (selector)``.

Every query goes to ``/api/v1/query``; the report lists errors (Prometheus refused the query) and
empty results (it ran, nothing matched). Standard library only, so it also runs on a test host:

    python3 tests/grafana/panel_queries.py --prometheus http://127.0.0.1:9090 [--var env=demo]
        [--dashboards DIR_OR_FILE ...] [--fail-on-empty] [--allow-empty REGEX ...] [--json]

Exit status: 0 when every query ran (and, with ``--fail-on-empty``, returned data unless its
``dashboard/panel`` name matches an ``--allow-empty`` pattern), 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_DASHBOARDS = Path(__file__).resolve().parents[2] / "roles" / "grafana" / "files" / "dashboards"
ALL_VALUE = ".*"
BUILTIN_VALUES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}
# ${name}, ${name:format}, [[name]], [[name:format]], $name
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$", re.S)
_QUERY_RESULT = re.compile(r"^\s*query_result\((?P<query>.+)\)\s*$", re.S)


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref: str
    kind: str  # "panel" or "variable"
    expr: str
    query: str
    unresolved: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.dashboard}/{self.panel}"


@dataclass(frozen=True)
class QueryResult:
    query: PanelQuery
    status: str  # "ok", "empty" or "error"
    series: int = 0
    error: str = ""


def load_dashboards(paths: Iterable[Path]) -> list[dict]:
    """Dashboards from JSON files or directories of them (sorted by file name)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    return [json.loads(file.read_text()) for file in files]


def iter_panels(panels: Iterable[dict]) -> Iterator[dict]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def variable_values(dashboard: dict, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The value each variable takes for a check run: "All" for query variables, current values else."""
    values = dict(BUILTIN_VALUES)
    for variable in dashboard.get("templating", {}).get("list", []):
        kind, name = variable.get("type"), variable["name"]
        if kind == "datasource":
            continue
        if kind == "query":
            values[name] = variable.get("allValue") or ALL_VALUE
        else:
            current = variable.get("current", {}).get("value")
            if isinstance(current, list):
                current = current[0] if current else None
            values[name] = str(current if current not in (None, "", "$__all") else variable.get("query", ""))
    values.update(overrides or {})
    return values


def substitute(expr: str, values: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """Fill in the variables; returns the query and the names that had no value."""
    unresolved: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name in values:
            return values[name]
        unresolved.append(name)
        return match.group(0)

    return _VARIABLE.sub(replace, expr), tuple(unresolved)


def _variable_promql(definition: str) -> str | None:
    """PromQL that exercises a Prometheus variable query, or None when it is not PromQL-backed."""
    if match := _LABEL_VALUES.match(definition):
        label = match.group("label")
        selector = match.group("selector") or f'{{{label}!=""}}'
        return f"count by ({label}) ({selector})"
    if match := _QUERY_RESULT.match(definition):
        return match.group("query")
    return None


def extract_queries(dashboard: dict, overrides: dict[str, str] | None = None) -> list[PanelQuery]:
    """Every panel target's PromQL and every variable query of one dashboard, variables filled in."""
    values = variable_values(dashboard, overrides)
    title = dashboard.get("uid") or dashboard.get("title", "?")
    queries: list[PanelQuery] = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        definition = variable.get("definition") or variable.get("query")
        if isinstance(definition, dict):
            definition = definition.get("query", "")
        promql = _variable_promql(definition or "")
        if promql:
            query, unresolved = substitute(promql, values)
            queries.append(
                PanelQuery(title, f"${variable['name']}", "var", "variable", definition, query, unresolved)
            )
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                continue
            query, unresolved = substitute(expr, values)
            panel_name = f"{panel.get('title', '?')} (#{panel.get('id')})"
            queries.append(
                PanelQuery(title, panel_name, target.get("refId", "?"), "panel", expr, query, unresolved)
            )
    return queries


def run_query(prometheus: str, query: PanelQuery, timeout: float = 10.0) -> QueryResult:
    if query.unresolved:
        return QueryResult(query, "error", error=f"no value for variable(s) {', '.join(query.unresolved)}")
    url = f"{prometheus.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query.query})}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:  # Prometheus answers bad queries with 400 and a JSON body
        try:
            body = json.load(error)
        except ValueError:
            return QueryResult(query, "error", error=f"HTTP {error.code}")
    except (urllib.error.URLError, TimeoutError, ValueError) as error:
        return QueryResult(query, "error", error=f"{prometheus}: {error}")
    if body.get("status") != "success":
        return QueryResult(query, "error", error=f"{body.get('errorType', '?')}: {body.get('error', '?')}")
    result = body["data"]["result"]
    series = len(result) if isinstance(result, list) else 1
    return QueryResult(query, "ok" if series else "empty", series=series)


def run_queries(prometheus: str, queries: Iterable[PanelQuery], timeout: float = 10.0) -> list[QueryResult]:
    return [run_query(prometheus, query, timeout) for query in queries]


def check(
    prometheus: str,
    dashboards: Iterable[Path] = (DEFAULT_DASHBOARDS,),
    overrides: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> list[QueryResult]:
    """Extract and run the queries of every dashboard (the entry point for tests)."""
    queries = [q for dashboard in load_dashboards(dashboards) for q in extract_queries(dashboard, overrides)]
    return run_queries(prometheus, queries, timeout)


def failures(
    results: Iterable[QueryResult], fail_on_empty: bool, allow_empty: Iterable[str] = ()
) -> list[QueryResult]:
    patterns = [re.compile(p) for p in allow_empty]
    bad = []
    for result in results:
        if result.status == "error" or (
            result.status == "empty"
            and fail_on_empty
            and not any(p.search(result.query.name) for p in patterns)
        ):
            bad.append(result)
    return bad


def _parse_var(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.lstrip("$"), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument(
        "--dashboards",
        type=Path,
        nargs="+",
        default=[DEFAULT_DASHBOARDS],
        help="dashboard JSON files or directories (default: the grafana role's)",
    )
    parser.add_argument(
        "--var",
        type=_parse_var,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a dashboard variable (repeatable)",
    )
    parser.add_argument("--fail-on-empty", action="store_true", help="an empty result fails the run too")
    parser.add_argument(
        "--allow-empty",
        action="append",
        default=[],
        metavar="REGEX",
        help="with --fail-on-empty: empty results of matching 'dashboard/panel' names pass",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per query")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    results = check(args.prometheus, args.dashboards, dict(args.var), args.timeout)
    bad = failures(results, args.fail_on_empty, args.allow_empty)
    counts = {status: sum(r.status == status for r in results) for status in ("ok", "empty", "error")}
    if args.json:
        print(
            json.dumps(
                {
                    "counts": counts,
                    "failed": len(bad),
                    "results": [
                        {**asdict(r.query), "status": r.status, "series": r.series, "error": r.error}
                        for r in results
                    ],
                },
                indent=2,
            )
        )
    else:
        for r in results:
            line = f"{r.status.upper():5} {r.query.name} [{r.query.ref}]"
            if r.status == "ok":
                line += f" {r.series} series"
            print(line)
            if r.status != "ok":
                print(f"      query: {r.query.query}")
            if r.error:
                print(f"      error: {r.error}")
        print(
            f"panel_queries: {len(results)} queries, {counts['ok']} ok, {counts['empty']} empty, "
            f"{counts['error']} errors; {'FAILED' if bad else 'passed'}"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
