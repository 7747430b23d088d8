"""The haproxy role and common's certificate entry, on the controller.

- common's internal CA run twice against this machine: a certificate the CA verifies, with the names
  asked for, and nothing changed the second time; a pair from the inventory written as given.
- haproxy.cfg rendered by Ansible for several input sets and accepted by the controller's `haproxy -c`.
- The preflight: every bad input fails before a host changes, naming the variable.
- LIVE: the rendered configuration run by the controller's haproxy on 127.0.0.1 in front of two tiny
  Python backends (one healthy, one answering 503 on /health): TLS verified against the CA, TLS 1.1
  refused, HTTP redirected, HSTS, forwarded headers, 413 above the body limit, /metrics, the sick backend
  marked down.
"""

import grp
import http.client
import json
import math
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from controller_helpers import ROOT, ansible_playbook, local_host, outcomes

HERE = ROOT / "tests" / "haproxy"
NAMES = ["localhost", "127.0.0.1", "::1"]
BACKENDS = [{"name": "web1", "address": "10.0.0.11", "port": 5566}]


def _haproxy() -> str:
    found = shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
    if not found:
        pytest.fail("haproxy not found on this controller; run `sudo scripts/setup.sh tools`")
    return found


def _run(
    playbook: str, workdir: Path, hosts: dict[str, dict], *extra: str, json_output: bool = False
) -> subprocess.CompletedProcess:
    """One ansible-playbook run on this machine; every inventory host is one input set (its host
    variables override the roles' defaults), so several cases cost one run."""
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = {"all": {"hosts": {name: local_host(**inputs) for name, inputs in hosts.items()}}}
    return ansible_playbook(HERE / playbook, inventory, workdir, *extra, json_output=json_output)


def _recap(run: subprocess.CompletedProcess, host: str = "localhost") -> tuple[int, int]:
    """(changed, failed) of one host."""
    found = re.search(
        rf"^{re.escape(host)}\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", run.stdout, re.M
    )
    assert found, run.stdout + run.stderr
    return int(found.group(1)), int(found.group(2))


def _certificate_inputs(base: Path, **more) -> dict:
    """The certificate entry as an unprivileged user can run it here: files owned by this user, the
    venv's cryptography instead of Debian's package, and the system trust store left alone."""
    return {
        "common_certificate_path": str(base / "site.crt"),
        "common_certificate_key_path": str(base / "site.key"),
        "common_certificate_bundle_path": str(base / "site.pem"),
        "common_certificate_owner": pwd.getpwuid(os.getuid()).pw_name,
        "common_certificate_group": grp.getgrgid(os.getgid()).gr_name,
        "common_certificate_names": NAMES,
        "common_certificate_packages": [],
        "common_ca_dir": str(base / "ca"),
        "common_ca_name": "test",
        "common_ca_trust_path": "",
        **more,
    }


@pytest.fixture(scope="module")
def issued(tmp_path_factory) -> dict:
    """The internal CA and a certificate: two runs of the certificate entry, then one in check mode."""
    base = tmp_path_factory.mktemp("ca")
    hosts = {"localhost": _certificate_inputs(base)}
    runs = {}
    for name, extra in (("first", ()), ("second", ()), ("check", ("--check",))):
        runs[name] = _run("certificate.yml", base / f"run-{name}", hosts, *extra)
        assert runs[name].returncode == 0, runs[name].stdout + runs[name].stderr
    return {"base": base, **runs}


def test_ca_issues_a_certificate_it_verifies_with_the_names(issued):
    base = issued["base"]
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(base / "ca" / "ca.crt"), str(base / "site.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(base / "site.crt"), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    san = text.split("X509v3 Subject Alternative Name:")[1].splitlines()[1].strip()
    assert sorted(san.split(", ")) == ["DNS:localhost", "IP Address:0:0:0:0:0:0:0:1", "IP Address:127.0.0.1"]
    assert "CN = test internal CA" in text and "CN = localhost" in text


def test_ca_run_twice_changes_nothing_the_second_time(issued):
    assert _recap(issued["first"])[0] > 0
    assert _recap(issued["second"]) == (0, 0), issued["second"].stdout
    assert _recap(issued["check"]) == (0, 0), issued["check"].stdout


def test_ca_files_key_and_bundle_modes(issued):
    base = issued["base"]
    assert oct((base / "ca").stat().st_mode & 0o777) == "0o700"
    assert oct((base / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert oct((base / "site.key").stat().st_mode & 0o777) == "0o640"
    assert oct((base / "site.pem").stat().st_mode & 0o777) == "0o640"
    bundle = (base / "site.pem").read_text()
    assert bundle == (base / "site.crt").read_text() + (base / "site.key").read_text()


@pytest.fixture(scope="module")
def variants(issued, tmp_path_factory) -> dict:
    """One run, two hosts: the issued files with other names asked for, and a pair given as PEM."""
    work = tmp_path_factory.mktemp("variants")
    renamed, given = work / "renamed", work / "given"
    shutil.copytree(issued["base"], renamed, ignore=shutil.ignore_patterns("run-*"))
    given.mkdir()
    pem = {name: (issued["base"] / f"site.{name}").read_text() for name in ("crt", "key")}
    hosts = {
        "renamed": _certificate_inputs(renamed, common_certificate_names=["localhost"]),
        "given": _certificate_inputs(
            given,
            common_certificate_content=pem["crt"],
            common_certificate_key_content=pem["key"],
            common_ca_dir=str(given / "no-ca"),
        ),
    }
    run = _run("certificate.yml", work / "run", hosts)
    assert run.returncode == 0, run.stdout + run.stderr
    return {"run": run, "renamed": renamed, "given": given, "pem": pem}


def test_certificate_is_signed_again_when_the_names_change(issued, variants):
    assert _recap(variants["run"], "renamed")[0] > 0
    renamed = variants["renamed"]
    assert (renamed / "site.crt").read_text() != variants["pem"]["crt"]
    assert (renamed / "site.key").read_text() == variants["pem"]["key"], "the host key is kept"
    assert (renamed / "ca" / "ca.crt").read_text() == (issued["base"] / "ca" / "ca.crt").read_text()
    text = subprocess.run(
        ["openssl", "x509", "-in", str(renamed / "site.crt"), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert text.split()[-1] == "DNS:localhost"


def test_given_certificate_is_written_as_given(variants):
    given, pem = variants["given"], variants["pem"]
    assert (given / "site.crt").read_text() == pem["crt"]
    assert (given / "site.key").read_text() == pem["key"]
    assert (given / "site.pem").read_text() == pem["crt"] + pem["key"]
    assert oct((given / "site.key").stat().st_mode & 0o777) == "0o640"
    assert not (given / "no-ca").exists(), "a given certificate must not create a CA"


# --- rendering and haproxy -c ---

INPUT_SETS = {
    "defaults": {"haproxy_backend_servers": BACKENDS},
    "two_servers_tls13_roundrobin": {
        "haproxy_backend_servers": [*BACKENDS, {"name": "web2", "address": "10.0.0.12", "port": 8080}],
        "haproxy_tls_min_version": "TLSv1.3",
        "haproxy_backend_balance": "roundrobin",
        "haproxy_backend_maxconn": 5,
        "haproxy_timeout_client": "1m",
        "haproxy_metrics_listen_address": "0.0.0.0",
    },
    "ipv6_and_names": {
        "haproxy_listen_address": "::",
        "haproxy_backend_servers": [{"name": "web1.example.org", "address": "fd00::11", "port": "5566"}],
        "haproxy_health_check_interval": 500,
        "haproxy_max_body_bytes": 4096,
    },
}


def _render_inputs(workdir: Path, bundle: Path, **inputs) -> dict:
    """A render host: its own configuration directory holding the bundle the configuration names."""
    (workdir / "tls").mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle, workdir / "tls" / "site.pem")
    return {
        "haproxy_render_dir": str(workdir),
        "haproxy_config_dir": str(workdir),
        "haproxy_stats_socket_path": str(workdir / "admin.sock"),
        **inputs,
    }


@pytest.fixture(scope="module")
def rendered(issued, tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("render")
    hosts = {
        name: _render_inputs(work / name, issued["base"] / "site.pem", **inputs)
        for name, inputs in INPUT_SETS.items()
    }
    run = _run("render.yml", work / "run", hosts)
    assert run.returncode == 0, run.stdout + run.stderr
    return {name: work / name for name in INPUT_SETS}


def _check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_haproxy(), "-c", "-f", str(path)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", INPUT_SETS)
def test_rendered_configuration_passes_haproxy_check(rendered, name):
    check = _check(rendered[name] / "haproxy.cfg")
    assert check.returncode == 0, (rendered[name] / "haproxy.cfg").read_text() + check.stdout + check.stderr
    # No warnings either: HAProxy warns about directives it ignores.
    assert "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr


def test_rendered_configuration_carries_the_inputs(rendered):
    config = (rendered["two_servers_tls13_roundrobin"] / "haproxy.cfg").read_text()
    assert config.startswith("#\n# Ansible managed")
    assert "ssl-min-ver TLSv1.3" in config
    assert "server web2 10.0.0.12:8080" in config
    assert "default-server check inter 2000 fall 3 rise 2 maxconn 5" in config
    assert "balance roundrobin" in config
    assert "http-request deny deny_status 413 if { req.hdr_val(content-length) gt 1048576 }" in config
    assert "timeout client 1m" in config
    assert "bind 0.0.0.0:8405" in config
    assert "chroot" not in config and "\n    user " not in config, "the unit runs HAProxy unprivileged"


def test_rendered_defaults_refuse_old_tls(rendered):
    """The live TLS 1.1 refusal has two causes, this floor and TLS 1.2-only AEAD suites: both are set."""
    config = (rendered["defaults"] / "haproxy.cfg").read_text()
    assert "ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets" in config
    ciphers = re.search(r"ssl-default-bind-ciphers (\S+)", config).group(1).split(":")
    assert ciphers, config
    assert all(c.startswith("ECDHE-") and ("GCM" in c or "CHACHA20" in c) for c in ciphers), ciphers


def test_rendered_dropin_runs_unprivileged(rendered):
    dropin = (rendered["defaults"] / "lookout-hardening.conf").read_text()
    assert "User=haproxy" in dropin
    assert "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n" in dropin
    assert "AmbientCapabilities=CAP_NET_BIND_SERVICE\n" in dropin
    assert 'Environment="PIDFILE=/run/haproxy/haproxy.pid" "EXTRAOPTS=-S /run/haproxy/master.sock"' in dropin


def test_haproxy_check_refuses_a_broken_configuration(rendered, tmp_path):
    """The role's validate command must be able to say no: a configuration naming a missing certificate."""
    broken = tmp_path / "broken.cfg"
    broken.write_text(
        (rendered["defaults"] / "haproxy.cfg").read_text().replace("tls/site.pem", "tls/missing.pem")
    )
    assert _check(broken).returncode != 0


def test_body_limit_default_is_conduits():
    defaults = (ROOT / "roles" / "haproxy" / "defaults" / "main.yml").read_text()
    limit = int(re.search(r"^haproxy_max_body_bytes: (\d+)$", defaults, re.M).group(1))
    config = (ROOT / "app" / "conduit" / "config.py").read_text()
    expression = re.search(r"^DEFAULT_MAX_CONTENT_LENGTH = (.+)$", config, re.M).group(1)
    factors = [int(f) for f in expression.split("*")]
    assert limit == math.prod(factors), expression


# --- preflight ---


def _other_key(tmp_path: Path) -> str:
    key = tmp_path / "other.key"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key)],
        capture_output=True,
        check=True,
    )
    return key.read_text()


@pytest.fixture(scope="module")
def preflight(issued, tmp_path_factory) -> dict:
    """Every case is a host of one run: the good inputs must pass, each bad one fail."""
    work = tmp_path_factory.mktemp("preflight")
    cert = (issued["base"] / "site.crt").read_text()
    other_key = _other_key(work)
    bad = {
        "certificate_without_key": (
            {"haproxy_tls_certificate": cert},
            "haproxy_tls_certificate and haproxy_tls_key come together",
        ),
        "key_without_certificate": (
            {"haproxy_tls_key": other_key},
            "haproxy_tls_certificate and haproxy_tls_key come together",
        ),
        "key_not_matching": (
            {"haproxy_tls_certificate": cert, "haproxy_tls_key": other_key},
            "haproxy_tls_key is not the key of haproxy_tls_certificate",
        ),
        "certificate_not_pem": (
            {"haproxy_tls_certificate": "not a certificate", "haproxy_tls_key": other_key},
            "haproxy_tls_key is not the key of haproxy_tls_certificate (or one of them is not PEM)",
        ),
        "server_without_address": (
            {"haproxy_backend_servers": [{"name": "web1", "port": 5566}]},
            "haproxy_backend_servers needs",
        ),
        "server_without_port": (
            {"haproxy_backend_servers": [{"name": "web1", "address": "10.0.0.11"}]},
            "haproxy_backend_servers needs",
        ),
        "server_without_name": (
            {"haproxy_backend_servers": [{"address": "10.0.0.11", "port": 5566}]},
            "haproxy_backend_servers needs",
        ),
        "server_port_out_of_range": (
            {"haproxy_backend_servers": [{"name": "web1", "address": "10.0.0.11", "port": 65536}]},
            "haproxy_backend_servers needs",
        ),
        "unknown-backend-host": (
            {"haproxy_backend_servers": [{"name": "web9", "address": "web9.lookout.invalid", "port": 5566}]},
            "haproxy_backend_servers: web9.lookout.invalid does not resolve on unknown-backend-host",
        ),
        "no_servers": ({"haproxy_backend_servers": []}, "haproxy_backend_servers needs at least one server"),
        "duplicate_name": (
            {"haproxy_backend_servers": [*BACKENDS, {**BACKENDS[0], "address": "10.0.0.12"}]},
            "haproxy_backend_servers names a server twice",
        ),
        "interval_zero": (
            {"haproxy_health_check_interval": 0},
            'haproxy: haproxy_health_check_interval must be a whole number above 0 (got "0")',
        ),
        "no_tls_names": ({"haproxy_tls_names": []}, "needs common_certificate_names"),
        "listen_address_with_port": (
            {"haproxy_listen_address": "0.0.0.0:443"},
            "haproxy: haproxy_listen_address must be an IP address or a host name, without a scheme or a port"
            ' (got "0.0.0.0:443")',
        ),
        "metrics_listen_address_with_scheme": (
            {"haproxy_metrics_listen_address": "http://127.0.0.1"},
            "haproxy: haproxy_metrics_listen_address must be an IP address or a host name",
        ),
        "timeout_in_words": (
            {"haproxy_timeout_client": "30 seconds"},
            "haproxy: haproxy_timeout_client must be an HAProxy time, whole numbers with the units us, ms,"
            ' s, m, h, d (none: ms) and without spaces, such as 10s, 500 or 1m30s (got "30 seconds")',
        ),
        "timeout_decimal": (
            {"haproxy_timeout_server": "1.5s"},
            "haproxy: haproxy_timeout_server must be an HAProxy time, whole numbers",
        ),
        "backend_maxconn_zero": (
            {"haproxy_backend_maxconn": 0},
            'haproxy: haproxy_backend_maxconn must be a whole number above 0 (got "0")',
        ),
        "hsts_negative": (
            {"haproxy_hsts_max_age": -1},
            'haproxy: haproxy_hsts_max_age must be a whole number, 0 or more (got "-1")',
        ),
    }
    hosts = {"good": {"haproxy_backend_servers": BACKENDS}}
    hosts |= {case: {"haproxy_backend_servers": BACKENDS, **inputs} for case, (inputs, _) in bad.items()}
    run = _run("preflight.yml", work / "run", hosts, json_output=True)
    return {"outcomes": outcomes(run), "messages": {case: message for case, (_, message) in bad.items()}}


BAD = [
    "certificate_without_key",
    "key_without_certificate",
    "key_not_matching",
    "certificate_not_pem",
    "server_without_address",
    "server_without_port",
    "server_without_name",
    "server_port_out_of_range",
    "unknown-backend-host",
    "no_servers",
    "duplicate_name",
    "interval_zero",
    "no_tls_names",
    "listen_address_with_port",
    "metrics_listen_address_with_scheme",
    "timeout_in_words",
    "timeout_decimal",
    "backend_maxconn_zero",
    "hsts_negative",
]


def test_preflight_accepts_good_inputs(preflight):
    good = preflight["outcomes"]["good"]
    assert (good.changed, good.failures) == (0, ()), good.failure


@pytest.mark.parametrize("case", BAD)
def test_preflight_refuses_bad_input_naming_the_variable(preflight, case):
    outcome = preflight["outcomes"][case]
    assert outcome.changed == 0
    assert outcome.failures, f"{case} was accepted"
    assert preflight["messages"][case] in outcome.failure, outcome.failure
    assert "PRIVATE KEY" not in outcome.failure, "a key leaked into the output"


# --- live ---


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _backend(name: str, healthy: bool) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            status = 200 if healthy or self.path != "/health" else 503
            body = json.dumps({"server": name, "headers": dict(self.headers), "length": length}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):  # the test's output stays readable
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _runtime_api(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def _server_states(path: Path) -> dict[str, str]:
    rows = _runtime_api(path, "show stat").lstrip("# ").splitlines()
    header = rows[0].split(",")
    stats = [dict(zip(header, row.split(","), strict=False)) for row in rows[1:] if row]
    return {row["svname"]: row["status"] for row in stats if row["pxname"] == "conduit"}


@pytest.fixture(scope="module")
def live(issued, tmp_path_factory):
    work = tmp_path_factory.mktemp("live")
    healthy, sick = _backend("healthy", True), _backend("sick", False)
    ports = {"https": _free_port(), "http": _free_port(), "metrics": _free_port()}
    inputs = _render_inputs(
        work,
        issued["base"] / "site.pem",
        haproxy_listen_address="127.0.0.1",
        haproxy_https_port=ports["https"],
        haproxy_http_port=ports["http"],
        haproxy_metrics_port=ports["metrics"],
        haproxy_max_body_bytes=1024,
        haproxy_health_check_interval=100,
        haproxy_health_check_fall=2,
        haproxy_health_check_rise=1,
        # Nothing listens there: the test does not read HAProxy's log, and needs no syslog socket.
        haproxy_log_target="127.0.0.1:9",
        haproxy_backend_servers=[
            {"name": "healthy", "address": "127.0.0.1", "port": healthy.server_address[1]},
            {"name": "sick", "address": "127.0.0.1", "port": sick.server_address[1]},
        ],
    )
    run = _run("render.yml", work / "run", {"live": inputs})
    assert run.returncode == 0, run.stdout + run.stderr
    # Foreground (-db), and never longer than a minute even if teardown is skipped.
    process = subprocess.Popen(
        ["timeout", "60", _haproxy(), "-db", "-f", str(work / "haproxy.cfg")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    socket_path = work / "admin.sock"
    try:
        deadline = time.monotonic() + 10
        states = {}
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            if socket_path.exists():
                states = _server_states(socket_path)
                if states.get("sick", "").startswith("DOWN") and states.get("healthy") == "UP":
                    break
            time.sleep(0.1)
        yield {
            "ports": ports,
            "socket": socket_path,
            "states": states,
            "ca": issued["base"] / "ca" / "ca.crt",
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
        healthy.shutdown()
        sick.shutdown()


def _https(live, method="GET", path="/echo", *, body=None, headers=None, chunked=False):
    context = ssl.create_default_context(cafile=str(live["ca"]))
    connection = http.client.HTTPSConnection("127.0.0.1", live["ports"]["https"], context=context, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_live_sick_backend_is_marked_down(live):
    assert live["states"].get("healthy") == "UP", live["states"]
    assert live["states"].get("sick", "").startswith("DOWN"), live["states"]


def test_live_https_verifies_against_the_ca_with_hsts(live):
    status, headers, body = _https(live)
    assert status == 200, body
    assert json.loads(body)["server"] == "healthy"
    assert headers.get("strict-transport-security") == "max-age=31536000"


def test_live_certificate_names_are_checked_by_clients(live):
    """A name the certificate does not carry fails verification: the CA check is not a formality."""
    context = ssl.create_default_context(cafile=str(live["ca"]))
    with (
        socket.create_connection(("127.0.0.1", live["ports"]["https"]), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="www.example.org")


def _tls11_context(cafile: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # Debian's OpenSSL defaults forbid TLS 1.1 on the client side too; lift that so only the server decides.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    return context


def _client_speaks_tls11(certificate: Path, key: Path) -> bool:
    """Control: the same client context completes a TLS 1.1 handshake with a server that allows it."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_context.minimum_version = ssl.TLSVersion.TLSv1_1
    server_context.load_cert_chain(certificate, key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        connection, _ = listener.accept()
        try:
            server_context.wrap_socket(connection, server_side=True).close()
        except (ssl.SSLError, OSError):
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            _tls11_context().wrap_socket(raw) as tls,
        ):
            return tls.version() == "TLSv1.1"
    except (ssl.SSLError, OSError):
        return False
    finally:
        thread.join(timeout=5)
        listener.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_live_tls11_is_refused(live, issued):
    if not _client_speaks_tls11(issued["base"] / "site.crt", issued["base"] / "site.key"):
        pytest.skip("this controller's OpenSSL cannot do TLS 1.1 at all, so a refusal would prove nothing")
    with (
        socket.create_connection(("127.0.0.1", live["ports"]["https"]), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        _tls11_context().wrap_socket(raw)


def test_live_http_redirects_to_https(live):
    connection = http.client.HTTPConnection("127.0.0.1", live["ports"]["http"], timeout=5)
    try:
        connection.request("GET", "/articles?page=2")
        response = connection.getresponse()
        assert response.status == 301
        assert response.getheader("Location") == f"https://127.0.0.1:{live['ports']['http']}/articles?page=2"
    finally:
        connection.close()


def test_live_forwarded_headers_reach_the_backend(live):
    status, _, body = _https(live, headers={"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "http"})
    assert status == 200, body
    headers = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert headers["x-forwarded-for"] == "127.0.0.1", "the client's own X-Forwarded-For must not survive"
    assert headers["x-forwarded-proto"] == "https"


def test_live_body_limit(live):
    status, _, body = _https(live, "POST", body=b"x" * 1024)
    assert status == 200 and json.loads(body)["length"] == 1024, body
    status, _, _ = _https(live, "POST", body=b"x" * 1025)
    assert status == 413
    # Chunked (no Content-Length): judged by what HAProxy buffered.
    status, _, _ = _https(live, "POST", body=iter([b"x" * 800, b"x" * 800]), chunked=True)
    assert status == 413


def test_live_metrics(live):
    connection = http.client.HTTPConnection("127.0.0.1", live["ports"]["metrics"], timeout=5)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    assert response.status == 200
    assert re.search(r'^haproxy_backend_active_servers\{proxy="conduit"\} 1$', text, re.M), text[:2000]
    assert "haproxy_frontend_http_requests_total" in text
