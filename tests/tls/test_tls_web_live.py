"""TLS on the web hosts and the front door, live on 127.0.0.1 with what the roles write: common's `tls` entry
signs Conduit's certificate (inputs conduit_tls_*) and HAProxy's metrics certificate (haproxy_metrics_tls_*)
with a test CA; the conduit role's gunicorn.conf.py (conduit_tls_enabled) runs the app under gunicorn,
started as systemd starts it (systemd-socket-activate hands over the listening socket); the haproxy role's
render entry writes haproxy.cfg with the metrics endpoint and the backend over TLS.

- gunicorn answers https verified against the CA, for the names the health gate and HAProxy use; plain
  HTTP on the same port gets no page; a client that does not trust the CA fails the handshake; a renewed
  certificate is served without a reload (gunicorn loads it for every connection);
- HAProxy's metrics endpoint answers https verified against the CA and no page over plain HTTP;
- HAProxy's backend servers are checked over TLS against the CA, for their tls_name: gunicorn is UP and
  serves requests through the public frontend; a TLS server whose certificate comes from another CA, and a
  plain HTTP server, are DOWN."""

import grp
import http.server
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, free_port, local_host, wait_for

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
HAPROXY = shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}{os.pathsep}/usr/sbin")
SECRET_KEY = "tls-web-live-secret-key-of-at-least-32-characters"


def _tls_host(role: str, ca_dir: Path, **inputs) -> dict:
    """The role's _tls_* inputs as an unprivileged run can use them: files of this user, the venv's
    cryptography, the trust store untouched."""
    return {
        f"{role}_tls_names": ["localhost"],
        f"{role}_tls_certificate": "",
        f"{role}_tls_key": "",
        f"{role}_tls_ca_name": "tls-web-live",
        f"{role}_tls_ca_dir": str(ca_dir),
        f"{role}_tls_ca_certificate": "",
        f"{role}_tls_ca_key": "",
        "common_certificate_owner": pwd.getpwuid(os.getuid()).pw_name,
        "common_certificate_packages": [],
        "common_ca_trust_path": "",
        **inputs,
    }


def _play(work: Path) -> list[dict]:
    group = grp.getgrgid(os.getgid()).gr_name
    conduit = {
        "name": "Conduit: its certificate (tls entry) and gunicorn.conf.py as the role writes them",
        "hosts": "web",
        "gather_facts": False,
        "vars_files": [
            str(ROOT / "roles/conduit/defaults/main.yml"),
            str(ROOT / "roles/conduit/vars/main.yml"),
        ],
        "tasks": [
            {
                "name": "Take the certificate",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "tls"},
                "vars": {
                    "common_tls_role": "conduit",
                    "common_tls_files": "{{ __conduit_tls_files }}",
                    "common_tls_group": group,
                    "common_tls_extra_names": "{{ __conduit_tls_extra_names }}",
                },
            },
            {
                "name": "Render gunicorn.conf.py",
                "ansible.builtin.template": {
                    "src": str(ROOT / "roles/conduit/templates/gunicorn.conf.py.j2"),
                    "dest": "{{ __conduit_gunicorn_conf }}",
                    "mode": "0644",
                },
            },
        ],
    }
    haproxy = {
        "name": "HAProxy: the public and the metrics certificates, haproxy.cfg from the render entry",
        "hosts": "lb",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Render",
                "ansible.builtin.include_role": {"name": "haproxy", "tasks_from": "render", "public": True},
            },
            {
                "name": "Take the metrics certificate",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "tls"},
                "vars": {
                    "common_tls_role": "haproxy_metrics",
                    "common_tls_files": "{{ __haproxy_metrics_tls_files }}",
                    "common_tls_group": group,
                },
            },
            {
                "name": "Take the public certificate",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "certificate"},
                "vars": {
                    "common_certificate_path": "{{ __haproxy_tls_certificate_file }}",
                    "common_certificate_key_path": "{{ __haproxy_tls_key_file }}",
                    "common_certificate_bundle_path": "{{ __haproxy_tls_bundle_file }}",
                    "common_certificate_group": group,
                    "common_certificate_names": ["localhost"],
                    "common_ca_name": "tls-web-live",
                    "common_ca_dir": str(work / "ca"),
                },
            },
        ],
    }
    return [conduit, haproxy]


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(port: int, context: ssl.SSLContext | None) -> http.server.ThreadingHTTPServer:
    """A backend answering 200 everywhere on 127.0.0.1:port, over TLS with this context (else plain)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Backend)
    if context:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _foreign_context(work: Path) -> ssl.SSLContext:
    """A server context whose certificate (for localhost) comes from another CA than the test's."""
    key, crt = work / "foreign.key", work / "foreign.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    return context


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if not (SOCKET_ACTIVATE and HAPROXY):
        pytest.skip("systemd-socket-activate or haproxy is not on this controller (make setup)")
    work = tmp_path_factory.mktemp("tls-web")
    conduit_dir, haproxy_dir = work / "conduit", work / "haproxy"
    for directory in (conduit_dir, haproxy_dir / "tls", work / "metrics"):
        directory.mkdir(parents=True)
    ports = {name: free_port() for name in ("conduit", "https", "http", "metrics", "foreign", "plain")}
    servers = [
        {"name": "conduit", "address": "127.0.0.1", "port": ports["conduit"], "tls_name": "localhost"},
        {"name": "foreign-ca", "address": "127.0.0.1", "port": ports["foreign"], "tls_name": "localhost"},
        {"name": "plain-http", "address": "127.0.0.1", "port": ports["plain"], "tls_name": "localhost"},
    ]
    hosts = {
        "web": {"hosts": {"web1": local_host(__conduit_addresses={"0.0.0.0": ["0.0.0.0"]})}},
        "lb": {"hosts": {"lb1": local_host(**_tls_host(
            "haproxy_metrics", work / "ca",
            haproxy_render_dir=str(haproxy_dir),
            haproxy_config_dir=str(haproxy_dir),
            haproxy_listen_address="127.0.0.1",
            haproxy_https_port=ports["https"],
            haproxy_http_port=ports["http"],
            haproxy_metrics_listen_address="127.0.0.1",
            haproxy_metrics_port=ports["metrics"],
            haproxy_metrics_tls_enabled=True,
            haproxy_backend_tls_enabled=True,
            haproxy_backend_servers=servers,
            haproxy_health_check_interval=300,
            haproxy_health_check_fall=1,
            haproxy_health_check_rise=1,
            haproxy_stats_socket_path=str(work / "admin.sock"),
            haproxy_log_target="127.0.0.1:9",
        ))}},
    }  # fmt: skip
    # The conduit play reads the role's defaults as play variables: its inputs come as extra variables.
    conduit_inputs = _tls_host(
        "conduit", work / "ca", conduit_tls_enabled=True, conduit_config_dir=str(conduit_dir)
    )
    (work / "conduit.json").write_text(json.dumps(conduit_inputs))
    playbook = work / "play.yml"
    playbook.write_text(yaml.safe_dump(_play(work), sort_keys=False))
    run = ansible_playbook(
        playbook, {"all": {"children": hosts}}, work, "--forks", "1", "-e", f"@{work / 'conduit.json'}"
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    (conduit_dir / "conduit.env").write_text(
        f'CONDUIT_ENV="production"\nSECRET_KEY="{SECRET_KEY}"\nDATABASE_URL="sqlite:///{work}/conduit.db"\n'
        'CONDUIT_WORKERS="2"\n'
    )
    tls = {kind: conduit_dir / "tls" / f"conduit{suffix}" for kind, suffix in
           (("certificate", ".crt"), ("key", ".key"), ("ca", "-ca.crt"))}  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT / "app"), PROMETHEUS_MULTIPROC_DIR=str(work / "metrics"))
    migrate = subprocess.run(
        [sys.executable, "-m", "conduit", "db", "upgrade"],
        env=env | {"CONDUIT_ENV": "production", "SECRET_KEY": SECRET_KEY,
                   "DATABASE_URL": f"sqlite:///{work}/conduit.db"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    logs = (work / "gunicorn.log").open("wb"), (work / "haproxy.log").open("wb")
    # As conduit.socket and conduit.service: the listening socket is systemd's, gunicorn gets it as fd 3.
    gunicorn = subprocess.Popen(
        ["timeout", "120", SOCKET_ACTIVATE, "-l", f"127.0.0.1:{ports['conduit']}", sys.executable, "-m",
         "gunicorn", "--config", str(conduit_dir / "gunicorn.conf.py"), "conduit.wsgi:app"],
        env=env, stdout=logs[0], stderr=subprocess.STDOUT,
    )  # fmt: skip
    foreign = _serve(ports["foreign"], _foreign_context(work))
    plain = _serve(ports["plain"], None)
    haproxy = subprocess.Popen(
        ["timeout", "120", HAPROXY, "-db", "-f", str(haproxy_dir / "haproxy.cfg")],
        stdout=logs[1], stderr=subprocess.STDOUT,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=tls["ca"])
    try:
        yield {"ports": ports, "context": context, "tls": tls, "ca_dir": work / "ca", "work": work}
    finally:
        for process in (haproxy, gunicorn):
            process.terminate()
            process.wait(timeout=40)
        for server in (foreign, plain):
            server.shutdown()
        for log in logs:
            log.close()


def _https(url: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def _conduit_health(site, host: str = "127.0.0.1") -> tuple[int, bytes]:
    return _https(f"https://{host}:{site['ports']['conduit']}/health", site["context"])


def test_gunicorn_serves_https_verified_against_the_ca(site):
    # The first connection makes systemd-socket-activate start gunicorn, as a socket unit would.
    assert wait_for(lambda: _conduit_health(site)[0] == 200, 60), (site["work"] / "gunicorn.log").read_text()
    status, body = _conduit_health(site, "localhost")
    assert status == 200 and b'"status":"ok"' in body.replace(b" ", b""), body


def _plain_http(port: int) -> bytes:
    """What a plain HTTP request to 127.0.0.1:port gets back (nothing when the connection is closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        try:
            return raw.recv(200)
        except ConnectionResetError:
            return b""


def test_gunicorn_gives_plain_http_no_page(site):
    assert wait_for(lambda: _conduit_health(site)[0] == 200, 60)
    answer = _plain_http(site["ports"]["conduit"])
    assert b"HTTP/" not in answer and b"status" not in answer, answer


def test_gunicorn_is_refused_by_a_client_without_the_ca(site):
    assert wait_for(lambda: _conduit_health(site)[0] == 200, 60)
    with (
        socket.create_connection(("127.0.0.1", site["ports"]["conduit"]), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def _served_serial(site) -> int:
    with (
        socket.create_connection(("127.0.0.1", site["ports"]["conduit"]), timeout=5) as raw,
        site["context"].wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                         capture_output=True, check=True).stdout  # fmt: skip
    return int(out.decode().strip().split("=", 1)[1], 16)


def test_gunicorn_serves_a_renewed_certificate_without_a_reload(site, tmp_path):
    assert wait_for(lambda: _conduit_health(site)[0] == 200, 60)
    certificate = site["tls"]["certificate"]
    original = certificate.read_bytes()
    csr, renewed, extensions = tmp_path / "new.csr", tmp_path / "new.crt", tmp_path / "ext.cnf"
    extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(["openssl", "req", "-new", "-key", str(site["tls"]["key"]), "-subj", "/CN=localhost",
                    "-out", str(csr)], check=True, capture_output=True)  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(site["ca_dir"] / "ca.crt"),
         "-CAkey", str(site["ca_dir"] / "ca.key"), "-days", "30", "-set_serial", "4343",
         "-extfile", str(extensions), "-out", str(renewed)],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        certificate.write_bytes(renewed.read_bytes())
        assert _served_serial(site) == 4343
    finally:
        certificate.write_bytes(original)
    assert _served_serial(site) != 4343


def _metrics(site) -> str:
    status, body = _https(f"https://127.0.0.1:{site['ports']['metrics']}/metrics", site["context"])
    return body.decode() if status == 200 else ""


def test_haproxy_metrics_over_https_verified_against_the_ca(site):
    assert "haproxy_process_" in wait_for(lambda: _metrics(site), 30)
    answer = _plain_http(site["ports"]["metrics"])
    assert b"HTTP/1.1 200" not in answer and b"haproxy_" not in answer, answer
    with (
        socket.create_connection(("127.0.0.1", site["ports"]["metrics"]), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def _server_states(site) -> dict[str, str]:
    """The backend servers HAProxy holds UP or DOWN, from its metrics."""
    found = re.findall(
        r'haproxy_server_status\{proxy="conduit",server="([^"]+)",state="(UP|DOWN)"\} 1', _metrics(site)
    )
    return dict(found)


def test_haproxy_checks_the_backends_over_tls_against_the_ca(site):
    assert wait_for(lambda: _conduit_health(site)[0] == 200, 60)
    expected = {"conduit": "UP", "foreign-ca": "DOWN", "plain-http": "DOWN"}
    assert wait_for(lambda: _server_states(site) == expected, 30), _server_states(site)


def test_requests_reach_gunicorn_through_the_frontend_over_tls(site):
    assert wait_for(lambda: _server_states(site).get("conduit") == "UP", 60), _server_states(site)
    # Only the verified backend is in the pool: every request is Conduit's.
    for _ in range(4):
        status, body = _https(f"https://localhost:{site['ports']['https']}/health", site["context"])
        assert status == 200 and b'"database"' in body, (status, body[:200])
