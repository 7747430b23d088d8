"""One load test split over several load hosts, as roles/k6/tasks/run.yml starts and merges it.

- the command of each part, rendered exactly as Ansible renders it, for one, two and three load hosts:
  segments and the sequence come from the number of hosts (one host: no segment flags), each part tags its
  samples with its host and writes them to a gzip CSV, and the merge is told every part;
- a real two-part run on the controller: both rendered commands started side by side (each waits for the
  common start), against a loopback HTTP server speaking enough of Conduit's API for the load test's
  checks; the merged request count equals the sum of the parts and what the server counted, the parts
  start within a second of each other and k6's own percentiles of each part are what the merge computes
  from that part's samples.
"""

import csv
import getpass
import grp
import gzip
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import yaml
from controller_helpers import role_preflight_cases
from test_k6_load_test import ANSIBLE, BIN, K6, ROLE, ROOT, render_script

MERGE = ROOT / "roles" / "k6" / "files" / "k6_merge.py"
START = 1_796_025_000_000
AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0, reason="the command drops to k6_system_user (setpriv --init-groups)"
)


def rendered(
    tmp_path: Path, expression: str, hosts: list[str], start_at_ms: int = START, **overrides
) -> dict:
    """An expression as Ansible renders it on each load host of one run (one ansible call for all)."""
    extra = tmp_path / "overrides.json"
    extra.write_text(json.dumps({"__k6_run": {"hosts": hosts, "start_at_ms": start_at_ms}, **overrides}))
    run = subprocess.run(
        [
            str(ANSIBLE),
            "all",
            "-i",
            ",".join(hosts) + ",",
            "-c",
            "local",
            "-o",
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={{{{ {expression} | to_json }}}}",
            "-e",
            f"@{ROLE / 'defaults' / 'main.yml'}",
            "-e",
            f"@{ROLE / 'vars' / 'main.yml'}",
            "-e",
            f"@{extra}",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )
    values = {}
    for line in run.stdout.splitlines():
        host, found, result = line.partition(" | SUCCESS => ")
        if found:
            values[host] = json.loads(json.loads(result)["msg"])
    assert sorted(values) == sorted(hosts), run.stdout + run.stderr
    return values


def start_command() -> str:
    """The shell command of the task that starts each part (tasks/run.yml), as written there."""
    tasks = yaml.safe_load((ROLE / "tasks" / "run.yml").read_text())
    (task,) = [t for t in tasks if t["name"].startswith("Start every part of the load test")]
    return task["ansible.builtin.shell"]["cmd"]


def command(tmp_path: Path, hosts: list[str], start_at_ms: int = START, **overrides) -> dict:
    """That command as Ansible renders it on each load host."""
    return rendered(
        tmp_path, "__k6_test_command", hosts, start_at_ms, __k6_test_command=start_command(), **overrides
    )


def flags(args: list[str], name: str) -> list[str]:
    return [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]


def test_one_load_host_runs_the_whole_test(tmp_path):
    args, parts = rendered(tmp_path, "[__k6_run_args, __k6_merge_part_args]", ["load1"])["load1"]
    assert not [a for a in args if a.startswith("--execution-segment")]
    assert args[0] == "run"
    assert args[-1] == "/etc/k6/conduit.js"
    assert flags(args, "out") == ["csv=fileName=/var/lib/k6/samples.csv.gz,timeFormat=unix_milli"]
    assert flags(args, "tag") == ["load_host=load1"]
    assert flags(args, "address") == [""]
    assert parts == ["--part=load1=0:1"]


@pytest.mark.parametrize(
    ("hosts", "segments", "sequence"),
    [
        (["load1", "load2"], ["0:1/2", "1/2:1"], "0,1/2,1"),
        (["load1", "load2", "load3"], ["0:1/3", "1/3:2/3", "2/3:1"], "0,1/3,2/3,1"),
    ],
)
def test_each_load_host_runs_its_segment(tmp_path, hosts, segments, sequence):
    values = rendered(tmp_path, "[__k6_run_args, __k6_merge_part_args]", hosts, k6_tags={"env": "testing"})
    for host, segment in zip(hosts, segments, strict=True):
        args, parts = values[host]
        assert flags(args, "execution-segment") == [segment]
        assert flags(args, "execution-segment-sequence") == [sequence]
        # k6 replaces the script's tags with the command line's: k6_tags come again with the host's.
        assert flags(args, "tag") == ["env=testing", f"load_host={host}"]
        assert parts == [f"--part={h}={s}" for h, s in zip(hosts, segments, strict=True)]


def test_the_command_waits_for_the_common_start_and_says_when_it_began(tmp_path):
    line = command(tmp_path, ["load1", "load2"], k6_prometheus_rw_url="http://monitor1:9090/api/v1/write")[
        "load2"
    ]
    assert line.startswith(f"start={START};")
    assert (
        'echo "lookout: k6 started at $(date +%s%3N) ms, start time $start ms" > /var/lib/k6/k6.log;' in line
    )
    assert "setpriv --reuid=k6 --regid=k6 --init-groups /usr/bin/k6 run " in line
    assert "--out=experimental-prometheus-rw" in line
    # k6 in the background, its output to the log, watched for the stop file until it ends.
    assert "--execution-segment-sequence=0,1/2,1 /etc/k6/conduit.js >> /var/lib/k6/k6.log 2>&1 & k6=$!;" in (
        line
    )
    assert "stop=/var/lib/k6/stop;" in line
    assert line.endswith('exit "$rc"')


def test_the_run_time_limit_covers_the_wait_for_the_start(tmp_path):
    # The probe reached the slowest host 1.234 s after the controller took the time; the start is 20.5 s
    # after that time: the parts may wait 21 s, then run their stages (240 s by default) and the margin (90).
    probe_from = START - 20_500
    values = rendered(
        tmp_path,
        "[__k6_reach_ms | int, __k6_time_limit | int]",
        ["load1", "load2"],
        __k6_probe_from_ms=probe_from,
        __k6_probe={"stdout": str(probe_from + 1234)},
    )
    assert values["load1"] == values["load2"] == [1234, 21 + 240 + 90]


def test_k6_runs_the_parts_of_three_hosts(tmp_path):
    """k6 (the version the tests install) takes each part's rendered arguments; the parts split the VUs."""
    hosts = ["load1", "load2", "load3"]
    (tmp_path / "conduit.js").write_text(
        "import { sleep } from 'k6';\n"
        "export const options = { stages: [{ duration: '2s', target: 9 }] };\n"
        "export default function () { sleep(0.5); }\n"
    )
    values = rendered(tmp_path, "__k6_run_args", hosts, k6_config_dir=str(tmp_path), k6_work_dir="WORK")
    runs = {}
    for host in hosts:
        work = tmp_path / host
        work.mkdir()
        args = [a.replace("WORK", str(work)) for a in values[host]]
        runs[host] = subprocess.Popen(
            [str(K6), *args, "--quiet"],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "HOME": str(work), "K6_NO_USAGE_REPORT": "true"},
        )
    for run in runs.values():
        assert run.wait(timeout=60) == 0, run.stderr.read()
        run.stderr.close()
    summaries = [json.loads((tmp_path / h / "summary.json").read_text())["metrics"] for h in hosts]
    assert [s["vus_max"]["max"] for s in summaries] == [3, 3, 3]
    assert all((tmp_path / h / "samples.csv.gz").stat().st_size > 0 for h in hosts)


class Conduitish(BaseHTTPRequestHandler):
    """Enough of Conduit's API for the load test's setup() and checks; counts every request."""

    count = 0
    delay = 0.0
    lock = threading.Lock()

    def _reply(self, status: int, body: dict) -> None:
        time.sleep(Conduitish.delay)
        with Conduitish.lock:
            Conduitish.count += 1
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/api/users":
            self._reply(201, {"user": {"token": "t"}})
        else:
            self._reply(201, {"article": {"slug": "load-test"}})

    def do_GET(self):
        if self.path.startswith("/api/tags"):
            self._reply(200, {"tags": ["k6"]})
        elif self.path.endswith("/comments"):
            self._reply(200, {"comments": []})
        elif self.path.startswith("/api/articles/"):
            self._reply(200, {"article": {"slug": self.path.rsplit("/", 1)[1]}})
        else:
            self._reply(200, {"articles": []})

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Conduitish)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Conduitish.count = 0
    Conduitish.delay = 0.0
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_settings(tmp_path: Path, server: str, stages: list[dict], **overrides) -> dict:
    """The role's inputs of a controller-side run against the loopback server, as the current user."""
    return {
        "k6_target_urls": [server],
        "k6_stages": stages,
        "k6_sleep_seconds": 0.2,
        "k6_p95_ms": 2000,
        "k6_tags": {"env": "unit"},
        "k6_install_method": "binary",
        "k6_binary_dir": str(BIN),
        "k6_system_user": getpass.getuser(),
        "k6_system_group": grp.getgrgid(os.getgid()).gr_name,
        "k6_config_dir": str(tmp_path),
        **overrides,
    }


def start_parts(tmp_path: Path, hosts: list[str], settings: dict) -> tuple[int, dict]:
    """Each host's start command, rendered as Ansible renders it, started side by side in tmp_path/<host>."""
    render_script(tmp_path, **settings)  # tmp_path/conduit.js, the script every part runs
    # Rendering takes seconds: the commands are rendered first, the common start (1 s ahead, as the play's
    # k6_start_delay) put in just before they start.
    placeholder = 4_242_424_242_424
    commands = command(tmp_path, hosts, start_at_ms=placeholder, k6_work_dir="WORK", **settings)
    start_at = int((time.time() + 1) * 1000)
    processes = {}
    for host in hosts:
        work = tmp_path / host
        work.mkdir()
        line = commands[host].replace(str(placeholder), str(start_at)).replace("WORK", str(work))
        processes[host] = subprocess.Popen(
            ["/bin/sh", "-c", line],
            cwd=work,
            env={**os.environ, "K6_NO_USAGE_REPORT": "true", "K6_PROMETHEUS_RW_SERVER_URL": ""},
        )
    return start_at, processes


def merge_parts(tmp_path: Path, hosts: list[str], start_at: int) -> tuple[dict, dict, dict]:
    """What the play fetches (<host>-summary.json, -k6.log, -samples.csv.gz), merged as the play merges it:
    the merge's report, each part's metrics and the merged metrics."""
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    for host in hosts:
        for name in ("summary.json", "k6.log", "samples.csv.gz"):
            (fetched / f"{host}-{name}").write_bytes((tmp_path / host / name).read_bytes())
    part_args = rendered(tmp_path, "__k6_merge_part_args", hosts)[hosts[0]]
    merge = subprocess.run(
        [
            sys.executable,
            str(MERGE),
            "--dir",
            str(fetched),
            "--out",
            str(fetched / "summary.json"),
            "--start-at-ms",
            str(start_at),
            *part_args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert merge.returncode == 0, merge.stderr
    parts = {h: json.loads((fetched / f"{h}-summary.json").read_text())["metrics"] for h in hosts}
    merged = json.loads((fetched / "summary.json").read_text())["metrics"]
    return json.loads(merge.stdout), parts, merged


@AS_ROOT
@pytest.mark.parametrize(("vus", "split"), [(4, [2, 2]), (1, [1, 0])], ids=["4-vus", "1-vu"])
def test_two_parts_merge_to_what_the_server_counted(tmp_path, server, vus, split):
    """With one VU (the stack's load during its rollouts) the second part has none: it runs setup() only."""
    hosts = ["load1", "load2"]
    stages = [{"duration": "1s", "target": vus}, {"duration": "3s", "target": vus}]
    start_at, processes = start_parts(tmp_path, hosts, run_settings(tmp_path, server, stages))
    for host, process in processes.items():
        assert process.wait(timeout=90) == 0, (tmp_path / host / "k6.log").read_text()
    report, parts, merged = merge_parts(tmp_path, hosts, start_at)

    part_requests = [parts[h]["http_reqs"]["count"] for h in hosts]
    assert all(count >= 2 for count in part_requests)  # setup() in every part
    assert report["requests"] == merged["http_reqs"]["count"] == sum(part_requests) == Conduitish.count
    assert merged["iterations"]["count"] == sum(parts[h].get("iterations", {}).get("count", 0) for h in hosts)
    # Each part ran setup() (2 writes) and 4 reads per iteration.
    assert report["requests"] == 2 * 2 + 4 * merged["iterations"]["count"]
    # The segments split the virtual users.
    assert [parts[h].get("vus_max", {}).get("max", 0) for h in hosts] == split
    assert report["max_vus"] == vus
    assert report["failed_thresholds"] == []
    assert report["checks_failed"] == 0

    started = [part["started_at_ms"] for part in report["parts"]]
    assert all(start_at <= s < start_at + 1000 for s in started), (start_at, started)
    assert report["start_spread_ms"] < 1000
    # The samples' CSV carries the part's host (its --tag).
    with gzip.open(tmp_path / "fetched" / "load2-samples.csv.gz", "rt") as samples:
        tags = {frozenset(parse_qsl(row["extra_tags"])) for row in csv.DictReader(samples)}
    assert tags == {frozenset({("env", "unit"), ("load_host", "load2")})}
    print(
        f"\nsplit run: parts {part_requests}, merged {report['requests']}, server {Conduitish.count}, "
        f"start spread {report['start_spread_ms']} ms, merged p95 {report['p95_ms']} ms"
    )


@AS_ROOT
def test_the_stop_file_ends_every_part_early_with_its_summary(tmp_path, server):
    """A run of 2 minutes ended after a few seconds by k6_stop_file on both hosts: each part stops at once
    (well before its stages end), exits 0 saying so in its log, and the merge is whole: no request failed,
    not even those in flight when the users stopped (the server answers slowly). Those are in no count of
    k6 (measured: 3 of 41 the server answered), so the server counted at most one more per user."""
    hosts = ["load1", "load2"]
    stages = [{"duration": "1s", "target": 4}, {"duration": "120s", "target": 4}]
    Conduitish.delay = 0.3
    start_at, processes = start_parts(tmp_path, hosts, run_settings(tmp_path, server, stages))
    time.sleep(max(0.0, start_at / 1000 - time.time()) + 5)
    for host in hosts:
        (tmp_path / host / "stop").touch()
    stopped_at = time.time()
    for host, process in processes.items():
        assert process.wait(timeout=60) == 0, (tmp_path / host / "k6.log").read_text()
    took = time.time() - stopped_at
    assert took < 30, took
    for host in hosts:
        assert "lookout: stopped early on request" in (tmp_path / host / "k6.log").read_text()
    report, _, merged = merge_parts(tmp_path, hosts, start_at)
    assert report["requests"] == merged["http_reqs"]["count"] > 8
    assert 0 <= Conduitish.count - report["requests"] <= 4, (Conduitish.count, report["requests"])
    assert merged["http_req_failed"]["value"] == 0, merged["http_req_failed"]
    assert report["failed_thresholds"] == []
    print(f"\nstopped: k6 {report['requests']}, server {Conduitish.count} requests, ended in {took:.1f} s")


@AS_ROOT
def test_without_a_stop_file_a_failed_part_keeps_its_status(tmp_path, server):
    """The watch changes nothing else: a part whose threshold fails still exits 99, as k6 does."""
    stages = [{"duration": "2s", "target": 1}]
    _, processes = start_parts(tmp_path, ["load1"], run_settings(tmp_path, server, stages, k6_p95_ms=0))
    assert processes["load1"].wait(timeout=60) == 99, (tmp_path / "load1" / "k6.log").read_text()
    assert "stopped early" not in (tmp_path / "load1" / "k6.log").read_text()


@AS_ROOT
def test_the_merge_computes_k6s_own_percentiles_of_a_part(tmp_path, server):
    """One whole run: k6's summary statistics equal those the merge computes from the run's CSV samples."""
    common = run_settings(
        tmp_path,
        server,
        [{"duration": "2s", "target": 3}],
        k6_sleep_seconds=0.1,
        k6_seed_article=False,
        k6_work_dir=str(tmp_path),
    )
    render_script(tmp_path, **common)
    line = command(tmp_path, ["load1"], start_at_ms=0, **common)["load1"]
    assert subprocess.run(["/bin/sh", "-c", line], cwd=tmp_path, check=False, timeout=60).returncode == 0
    for name in ("summary.json", "k6.log", "samples.csv.gz"):
        (tmp_path / f"load1-{name}").write_bytes((tmp_path / name).read_bytes())
    merge = subprocess.run(
        [
            sys.executable,
            str(MERGE),
            "--dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "merged.json"),
            "--part=load1=0:1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert merge.returncode == 0, merge.stderr
    own = json.loads((tmp_path / "summary.json").read_text())["metrics"]
    merged = json.loads((tmp_path / "merged.json").read_text())["metrics"]
    for metric in (
        "http_req_duration",
        "http_req_waiting",
        "iteration_duration",
        "http_req_duration{expected_response:true}",
    ):
        for stat, value in own[metric].items():
            if stat != "thresholds":
                assert merged[metric][stat] == pytest.approx(value, abs=1e-6), (metric, stat)
    assert merged["http_reqs"]["count"] == own["http_reqs"]["count"] == Conduitish.count


def test_the_start_delay_is_checked_before_the_run(tmp_path):
    outcomes = role_preflight_cases(
        "k6", tmp_path, {"none": {"k6_start_delay": 0}, "words": {"k6_start_delay": "soon"}}
    )
    assert outcomes["none"].failures == (), outcomes["none"].failure
    assert "k6: k6_start_delay" in outcomes["words"].failure, outcomes["words"].failure
    assert '"soon"' in outcomes["words"].failure
