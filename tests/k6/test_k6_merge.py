"""The controller's merge of a load test split over several load hosts (roles/k6/files/k6_merge.py).

Parts are written as k6 writes them (summary export, gzip CSV samples, the role's first log line):

- counters and rates are summed and recomputed, gauges summed, checks summed per check;
- percentiles come from the parts' raw samples: against a known distribution (the merged p95 of 1..3000
  is 2850.05, not the mean of the parts' p95s) and against Python's own inclusive quantiles;
- thresholds are judged on the merged result, which may differ from each part's own verdict;
- parts that do not make one test (a segment missing or twice, samples cut short, a log of another run)
  are refused, and the program's exit status says pass (0), threshold failed (99) or cannot merge (2).
"""

import csv
import gzip
import importlib.util
import io
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MERGE = ROOT / "roles" / "k6" / "files" / "k6_merge.py"
START = 1_796_025_000_000

spec = importlib.util.spec_from_file_location("k6_merge", MERGE)
k6_merge = importlib.util.module_from_spec(spec)
sys.modules["k6_merge"] = k6_merge
spec.loader.exec_module(k6_merge)

CSV_HEADER = [
    "metric_name",
    "timestamp",
    "metric_value",
    "check",
    "error",
    "error_code",
    "expected_response",
    "group",
    "method",
    "name",
    "proto",
    "scenario",
    "service",
    "status",
    "subproto",
    "tls_version",
    "url",
    "extra_tags",
    "metadata",
]
STATS = ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)"]


def trend(values: list[float]) -> dict:
    ordered = sorted(values)
    return {stat: k6_merge.trend_stat(ordered, stat) for stat in STATS}


def write_part(
    directory: Path,
    host: str,
    durations: list[float],
    *,
    failed: int = 0,
    checks: tuple[int, int] = (0, 0),
    vus_max: int = 2,
    p95_ms: float = 500,
    max_error_rate: float = 0.01,
    started_at: int = START + 5,
    start: int = START,
    drop_samples: int = 0,
    seconds: float = 10.0,
) -> None:
    """One part as a load host leaves it: summary export, gzip CSV samples and the log's first line."""
    count = len(durations)
    own_p95 = k6_merge.percentile(sorted(durations), 0.95)
    summary = {
        "metrics": {
            "http_reqs": {"count": count, "rate": count / seconds},
            "iterations": {"count": count // 2, "rate": count / 2 / seconds},
            "http_req_failed": {
                "passes": failed,
                "fails": count - failed,
                "value": failed / count,
                "thresholds": {f"rate<{max_error_rate}": failed / count >= max_error_rate},
            },
            "checks": {"passes": checks[0], "fails": checks[1], "value": checks[0] / max(sum(checks), 1)},
            "vus_max": {"value": vus_max, "min": vus_max, "max": vus_max},
            "http_req_duration": {**trend(durations), "thresholds": {f"p(95)<{p95_ms}": own_p95 >= p95_ms}},
            "http_req_duration{expected_response:true}": trend(durations[failed:]),
        },
        "root_group": {
            "name": "",
            "path": "",
            "id": "d41d8cd98f00b204e9800998ecf8427e",
            "groups": {},
            "checks": {
                "articles: 200": {
                    "name": "articles: 200",
                    "path": "::articles: 200",
                    "id": "x",
                    "passes": checks[0],
                    "fails": checks[1],
                },
            },
        },
    }
    (directory / f"{host}-summary.json").write_text(json.dumps(summary))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_HEADER)
    writer.writeheader()
    for i, value in enumerate(durations[: count - drop_samples]):
        tags = {
            "expected_response": "false" if i < failed else "true",
            "extra_tags": f"env=unit&load_host={host}",
        }
        for name, metric_value in (
            ("http_reqs", 1.0),
            ("http_req_duration", value),
            ("http_req_waiting", value),
        ):
            writer.writerow(
                {"metric_name": name, "timestamp": START + i, "metric_value": f"{metric_value:f}", **tags}
            )
    with gzip.open(directory / f"{host}-samples.csv.gz", "wt") as handle:
        handle.write(text.getvalue())
    (directory / f"{host}-k6.log").write_text(
        f"lookout: k6 started at {started_at} ms, start time {start} ms\nk6 ...\n"
    )


def run_merge(directory: Path, *parts: str, start: int = START) -> tuple[int, dict | None, str]:
    run = subprocess.run(
        [
            sys.executable,
            str(MERGE),
            "--dir",
            str(directory),
            "--out",
            str(directory / "summary.json"),
            "--start-at-ms",
            str(start),
            *(f"--part={p}" for p in parts),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(run.stdout) if run.stdout.strip() else None
    return run.returncode, report, run.stderr


def test_counts_are_summed_and_percentiles_come_from_the_samples(tmp_path):
    write_part(
        tmp_path,
        "load1",
        [float(v) for v in range(1, 1001)],
        failed=4,
        checks=(990, 10),
        started_at=START + 3,
        p95_ms=5000,
    )
    write_part(
        tmp_path,
        "load2",
        [float(v) for v in range(1001, 3001)],
        failed=6,
        checks=(1990, 10),
        vus_max=3,
        started_at=START + 41,
        p95_ms=5000,
    )
    rc, report, stderr = run_merge(tmp_path, "load1=0:1/2", "load2=1/2:1")
    assert rc == 0, stderr
    merged = json.loads((tmp_path / "summary.json").read_text())
    metrics = merged["metrics"]
    assert metrics["http_reqs"]["count"] == 3000 == report["requests"]
    assert metrics["http_reqs"]["rate"] == pytest.approx(300.0)
    assert metrics["iterations"]["count"] == 500 + 1000
    assert (metrics["http_req_failed"]["passes"], metrics["http_req_failed"]["fails"]) == (10, 2990)
    assert metrics["http_req_failed"]["value"] == pytest.approx(10 / 3000)
    assert (metrics["checks"]["passes"], metrics["checks"]["fails"]) == (2980, 20)
    assert metrics["vus_max"]["max"] == 5
    assert merged["root_group"]["checks"]["articles: 200"]["passes"] == 2980
    # 1..3000: p95 at 0.95 * 2999 = 2849.05 between 2850 and 2851; the mean of the parts' p95s is 1925.05.
    duration = metrics["http_req_duration"]
    assert duration["p(95)"] == pytest.approx(2850.05)
    assert duration["med"] == pytest.approx(1500.5)
    assert (duration["min"], duration["max"], duration["avg"]) == (1.0, 3000.0, 1500.5)
    assert report["p95_ms"] == 2850.05
    # The submetric takes only the samples tagged expected_response=true (4 + 6 failed ones left out).
    assert metrics["http_req_duration{expected_response:true}"]["min"] == 5.0
    assert report["parts"] == [
        {"host": "load1", "segment": "0:1/2", "requests": 1000, "started_at_ms": START + 3},
        {"host": "load2", "segment": "1/2:1", "requests": 2000, "started_at_ms": START + 41},
    ]
    assert report["start_spread_ms"] == 38
    assert report["late_start_ms"] == 41


def test_percentiles_match_an_independent_computation(tmp_path):
    rng = random.Random(14)
    parts = [[rng.expovariate(1 / mean) for _ in range(n)] for mean, n in ((40, 1500), (90, 700), (15, 2300))]
    for i, values in enumerate(parts, 1):
        write_part(tmp_path, f"load{i}", values, p95_ms=10_000)
    rc, _, stderr = run_merge(tmp_path, "load1=0:1/3", "load2=1/3:2/3", "load3=2/3:1")
    assert rc == 0, stderr
    duration = json.loads((tmp_path / "summary.json").read_text())["metrics"]["http_req_duration"]
    everything = [round(v, 6) for values in parts for v in values]  # the CSV keeps 6 decimals, as k6's does
    cuts = statistics.quantiles(everything, n=100, method="inclusive")
    assert duration["p(90)"] == pytest.approx(cuts[89], abs=1e-9)
    assert duration["p(95)"] == pytest.approx(cuts[94], abs=1e-9)
    assert duration["p(99)"] == pytest.approx(cuts[98], abs=1e-9)
    assert duration["med"] == pytest.approx(statistics.median(everything), abs=1e-9)
    assert duration["avg"] == pytest.approx(statistics.fmean(everything), abs=1e-9)
    mean_of_parts = statistics.fmean(k6_merge.percentile(sorted(v), 0.95) for v in parts)
    assert abs(duration["p(95)"] - mean_of_parts) > 1


def test_thresholds_are_judged_on_the_merged_result(tmp_path):
    # load1 alone crosses p(95)<500 (its p95 is 949) and its 3 % failed share; merged with load2 neither is.
    write_part(tmp_path, "load1", [float(v) for v in range(1, 1001)], failed=30)
    write_part(tmp_path, "load2", [float(v) / 100 for v in range(1, 19001)], failed=0)
    rc, report, stderr = run_merge(tmp_path, "load1=0:1/2", "load2=1/2:1")
    assert rc == 0, stderr
    merged = json.loads((tmp_path / "summary.json").read_text())
    assert report["failed_thresholds"] == []
    assert merged["metrics"]["http_req_duration"]["thresholds"] == {"p(95)<500": False}
    assert merged["metrics"]["http_req_failed"]["thresholds"] == {"rate<0.01": False}
    assert merged["lookout"]["parts"][0]["thresholds_failed_on_the_part_alone"] == [
        "http_req_duration p(95)<500",
        "http_req_failed rate<0.01",
    ]


def test_a_failed_share_crossed_by_the_merged_result_fails(tmp_path):
    # load1 fails no request, load2 2 %: merged, 60 of 5000 (1.2 %) cross rate<0.01.
    write_part(tmp_path, "load1", [10.0] * 2000, failed=0)
    write_part(tmp_path, "load2", [10.0] * 3000, failed=60)
    rc, report, _ = run_merge(tmp_path, "load1=0:2/5", "load2=2/5:1")
    assert rc == 99
    assert report["failed_thresholds"] == ["http_req_failed rate<0.01"]
    merged = json.loads((tmp_path / "summary.json").read_text())
    assert merged["metrics"]["http_req_failed"]["value"] == pytest.approx(60 / 5000)
    assert merged["metrics"]["http_req_duration"]["thresholds"] == {"p(95)<500": False}


def test_a_p95_the_mean_of_the_parts_would_pass_fails(tmp_path):
    # load1: every request 100 ms (p95 100); load2: 20 % at 900 ms (p95 900). The mean of the two p95s is
    # 500 and would pass p(95)<600; over all requests 10 % take 900 ms, so the p95 is 900 and crosses it.
    write_part(tmp_path, "load1", [100.0] * 1000, p95_ms=600)
    write_part(tmp_path, "load2", [100.0] * 800 + [900.0] * 200, p95_ms=600)
    rc, report, _ = run_merge(tmp_path, "load1=0:1/2", "load2=1/2:1")
    assert rc == 99
    assert report["p95_ms"] == 900
    assert report["failed_thresholds"] == ["http_req_duration p(95)<600"]


def test_one_load_host_is_one_whole_part(tmp_path):
    write_part(tmp_path, "load1", [float(v) for v in range(1, 101)])
    rc, report, stderr = run_merge(tmp_path, "load1=0:1")
    assert rc == 0, stderr
    assert report["requests"] == 100
    assert report["start_spread_ms"] == 0
    assert report["p95_ms"] == pytest.approx(95.05)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        (["load1=0:1/2"], "a part of the test is missing"),
        (["load1=0:1/2", "load2=1/3:1"], "must cover 0:1 once"),
        (["load1=0:1/2", "load2=0:1/2"], "must cover 0:1 once"),
        (["load1=0:1/2", "load3=1/2:1"], "part load3: no summary"),
        (["load1=0:1/2", "load2=1/2:3/2"], "is not a part of 0:1"),
        (["load1"], "is not HOST=SEGMENT"),
    ],
)
def test_parts_that_are_not_one_test_are_refused(tmp_path, parts, message):
    write_part(tmp_path, "load1", [1.0, 2.0, 3.0])
    write_part(tmp_path, "load2", [1.0, 2.0, 3.0])
    rc, report, stderr = run_merge(tmp_path, *parts)
    assert rc == 2
    assert report is None
    assert message in stderr
    assert not (tmp_path / "summary.json").exists()


def test_samples_cut_short_are_refused(tmp_path):
    write_part(tmp_path, "load1", [1.0, 2.0, 3.0])
    write_part(tmp_path, "load2", [1.0, 2.0, 3.0, 4.0], drop_samples=1)
    rc, _, stderr = run_merge(tmp_path, "load1=0:1/2", "load2=1/2:1")
    assert rc == 2
    assert "part load2: 3 http_req_duration samples for 4 requests" in stderr


def test_a_part_from_another_run_is_refused(tmp_path):
    write_part(tmp_path, "load1", [1.0, 2.0, 3.0])
    write_part(tmp_path, "load2", [1.0, 2.0, 3.0], start=START - 60_000)
    rc, _, stderr = run_merge(tmp_path, "load1=0:1/2", "load2=1/2:1")
    assert rc == 2
    assert "load2-k6.log is of the run that started at" in stderr


def test_parts_judged_by_different_thresholds_are_refused(tmp_path):
    write_part(tmp_path, "load1", [1.0, 2.0, 3.0])
    write_part(tmp_path, "load2", [1.0, 2.0, 3.0], p95_ms=300)
    rc, _, stderr = run_merge(tmp_path, "load1=0:1/2", "load2=1/2:1")
    assert rc == 2
    assert "judges http_req_duration by" in stderr


@pytest.mark.parametrize(
    ("expression", "holds"),
    [
        ("p(95)<2850.1", True),
        ("p(95)<2850", False),
        ("p(99.9)<=3000", True),
        ("avg>1500", True),
        ("max==3000", True),
        ("min!=1", False),
        ("med >= 1500.5", True),
    ],
)
def test_threshold_expressions(expression, holds):
    ordered = [float(v) for v in range(1, 3001)]
    assert k6_merge.judge(expression, {}, ordered) is holds


def test_rate_and_counter_threshold_expressions():
    assert k6_merge.judge("rate<0.01", {"passes": 1, "fails": 199, "value": 0.005}, None)
    assert not k6_merge.judge("rate>0.99", {"passes": 1, "fails": 199, "value": 0.005}, None)
    assert k6_merge.judge("count>100", {"count": 101, "rate": 3.0}, None)
    with pytest.raises(k6_merge.MergeError, match="not an expression"):
        k6_merge.judge("p95 < 3", {}, [1.0])
