"""TLS on lookout's exporter-toolkit servers, live on 127.0.0.1 with Debian's binaries and what the roles
write: common's `tls` entry signs a certificate for the Prometheus server (valid 3 days, so the expiry alert
must fire) and one for the blackbox exporter with a test CA; the prometheus and blackbox_exporter roles'
render entries write their configurations, web configurations and rules with TLS and basic auth on.

- each server answers https verified against the CA and refuses plain HTTP (400, no page), and a client
  that does not trust the CA fails the handshake: the certificate check is real;
- Prometheus scrapes itself and the blackbox exporter over https (`scheme: https`, `tls_config.ca_file`);
- the blackbox exporter's `tls_connect` probe of Prometheus' listener verifies against the CA and reports
  the certificate's end, and CertificateExpiringSoon fires for it (expiry 14 days, certificate 3 days);
- a certificate replaced on disk is served on the next connection, without a restart."""

import base64
import calendar
import grp
import json
import os
import pwd
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from controller_helpers import (
    ansible_playbook,
    free_port,
    http_get,
    local_host,
    prometheus_live_inputs,
    start_quietly,
    wait_for,
)

PROMETHEUS = Path("/usr/bin/prometheus")
BLACKBOX = Path("/usr/bin/prometheus-blackbox-exporter")
USER = "lookout"
PASSWORD = "tls-live-password"
EXPIRY_DAYS = 14
PROMETHEUS_VALIDITY_DAYS = 3


def _play(host: str, role: str) -> dict:
    return {
        "name": f"{role}: the certificate from common's tls entry, the configuration from the render entry",
        "hosts": host,
        "gather_facts": False,
        "tasks": [
            # Public: the tls entry then reads the role's _tls_* inputs as it does inside the role.
            {
                "name": "Render",
                "ansible.builtin.include_role": {"name": role, "tasks_from": "render", "public": True},
            },
            {
                "name": "Take the certificate",
                "ansible.builtin.include_role": {"name": "common", "tasks_from": "tls"},
                "vars": {
                    "common_tls_role": role,
                    "common_tls_files": "{{ tls_files }}",
                    "common_tls_group": "{{ tls_group }}",
                },
            },
        ],
    }


PLAY = [_play("prom", "prometheus"), _play("blackbox", "blackbox_exporter")]


def _tls_files(config_dir: Path, role: str) -> dict:
    """Where the role's own vars put them (roles/<role>/vars/main.yml, __<role>_tls_files)."""
    tls = config_dir / "tls"
    return {
        "certificate": str(tls / f"{role}.crt"),
        "key": str(tls / f"{role}.key"),
        "ca": str(tls / f"{role}-ca.crt"),
    }


def _host(role: str, config_dir: Path, ca_dir: Path, **inputs) -> dict:
    return local_host(
        tls_files=_tls_files(config_dir, role),
        tls_group=grp.getgrgid(os.getgid()).gr_name,
        common_certificate_owner=pwd.getpwuid(os.getuid()).pw_name,
        common_certificate_packages=[],
        common_ca_trust_path="",
        **{
            f"{role}_tls_enabled": True,
            f"{role}_tls_names": ["localhost"],
            f"{role}_tls_ca_name": "tls-live",
            f"{role}_tls_ca_dir": str(ca_dir),
        },
        **inputs,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    if not (PROMETHEUS.exists() and BLACKBOX.exists()):
        pytest.skip("Debian's prometheus and blackbox exporter are not on this controller (make setup)")
    work = tmp_path_factory.mktemp("tls-live")
    ca_dir = work / "ca"
    prom_dir, bb_dir = work / "prometheus", work / "blackbox"
    prom_port, bb_port = free_port(), free_port()
    auth = {"username": USER, "password": PASSWORD}
    hosts = {
        "prom": _host(
            "prometheus",
            prom_dir,
            ca_dir,
            common_certificate_validity_days=PROMETHEUS_VALIDITY_DAYS,
            common_certificate_renew_days=1,
            **prometheus_live_inputs(prom_dir, prom_port),
            prometheus_blackbox_address=f"127.0.0.1:{bb_port}",
            prometheus_blackbox_basic_auth=auth,
            prometheus_tls_probe_targets=[f"127.0.0.1:{prom_port}"],
            prometheus_alert_certificate_expiry_days=EXPIRY_DAYS,
            prometheus_web_basic_auth_enabled=True,
            prometheus_web_basic_auth_users={USER: PASSWORD},
        ),
        "blackbox": _host(
            "blackbox_exporter",
            bb_dir,
            ca_dir,
            blackbox_exporter_render_dir=str(bb_dir),
            blackbox_exporter_config_dir=str(bb_dir),
            blackbox_exporter_render_checker=str(BLACKBOX),
            blackbox_exporter_web_basic_auth_enabled=True,
            blackbox_exporter_web_basic_auth_users={USER: PASSWORD},
        ),
    }
    playbook = work / "play.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    run = ansible_playbook(playbook, {"all": {"hosts": hosts}}, work, "--forks", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    # What the prometheus role's configure step writes next to the configuration on a host.
    for target in ("self", "blackbox"):
        (prom_dir / f"client-{target}.password").write_text(PASSWORD)
    # Each server with the files its role wrote, as its unit starts it.
    commands = (
        (BLACKBOX, bb_dir / "blackbox.yml", bb_dir / "blackbox-web.yml", bb_port, []),
        (PROMETHEUS, prom_dir / "prometheus.yml", prom_dir / "prometheus-web.yml", prom_port,
         [f"--storage.tsdb.path={work / 'data'}"]),
    )  # fmt: skip
    processes = [
        start_quietly(
            [
                str(binary),
                f"--config.file={config}",
                f"--web.config.file={web}",
                f"--web.listen-address=127.0.0.1:{port}",
                *more,
            ]
        )
        for binary, config, web, port, more in commands
    ]
    ca = _tls_files(prom_dir, "prometheus")["ca"]
    context = ssl.create_default_context(cafile=ca)
    servers = {"prometheus": f"127.0.0.1:{prom_port}", "blackbox": f"127.0.0.1:{bb_port}"}
    try:
        for address in servers.values():
            assert wait_for(lambda a=address: _get(f"https://{a}/-/ready", context)[0] == 200, 20), address
        yield {"servers": servers, "context": context, "ca": ca, "prom_dir": prom_dir, "ca_dir": ca_dir}
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def _get(url: str, context: ssl.SSLContext | None, authenticated: bool = True) -> tuple[int, bytes]:
    """(status, body) over https with this TLS context (basic auth as the monitoring user)."""
    request = urllib.request.Request(url)
    if authenticated:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError:
        return 0, b""


@pytest.mark.parametrize("server", ["prometheus", "blackbox"])
def test_https_verifies_against_the_ca(stack, server):
    address = stack["servers"][server]
    assert _get(f"https://{address}/metrics", stack["context"])[0] == 200
    # Basic auth still holds behind TLS.
    assert _get(f"https://{address}/metrics", stack["context"], authenticated=False)[0] == 401


@pytest.mark.parametrize("server", ["prometheus", "blackbox"])
def test_plain_http_is_refused(stack, server):
    status, body = http_get(f"http://{stack['servers'][server]}/metrics", USER, PASSWORD)
    assert status == 400, (status, body[:200])
    assert b"# HELP" not in body


@pytest.mark.parametrize("server", ["prometheus", "blackbox"])
def test_a_client_without_the_ca_fails_the_handshake(stack, server):
    """The system's trust store does not hold the test CA: verification must fail, not pass silently."""
    host, port = stack["servers"][server].split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname=host)


def _targets(stack) -> dict:
    status, body = _get(f"https://{stack['servers']['prometheus']}/api/v1/targets", stack["context"])
    targets = json.loads(body)["data"]["activeTargets"] if status == 200 else []
    return {t["labels"]["job"]: t for t in targets}


@pytest.mark.parametrize("job", ["prometheus", "blackbox", "tls"])
def test_prometheus_scrapes_over_https_verifying_the_ca(stack, job):
    def up():
        target = _targets(stack).get(job)
        return target if target and target["health"] == "up" else None

    target = wait_for(up, 30)
    assert target, _targets(stack).get(job)
    if job != "tls":
        assert target["scrapeUrl"].startswith("https://"), target["scrapeUrl"]


def _query(stack, promql: str) -> list:
    url = f"https://{stack['servers']['prometheus']}/api/v1/query?query={urllib.parse.quote(promql)}"
    status, body = _get(url, stack["context"])
    return json.loads(body)["data"]["result"] if status == 200 else []


def test_tls_probe_reports_the_certificates_end(stack):
    certificate = Path(_tls_files(stack["prom_dir"], "prometheus")["certificate"])
    not_after = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-in", str(certificate)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    end = calendar.timegm(time.strptime(not_after.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z"))
    result = wait_for(lambda: _query(stack, 'probe_ssl_earliest_cert_expiry{job="tls"}'), 30)
    assert result, "no probe_ssl_earliest_cert_expiry from the tls job"
    assert abs(float(result[0]["value"][1]) - end) < 5
    assert _query(stack, 'probe_success{job="tls"} == 1')


def test_certificate_expiring_soon_fires_for_a_short_lived_certificate(stack):
    def firing():
        status, body = _get(f"https://{stack['servers']['prometheus']}/api/v1/alerts", stack["context"])
        alerts = json.loads(body)["data"]["alerts"] if status == 200 else []
        return [
            alert
            for alert in alerts
            if alert["labels"]["alertname"] == "CertificateExpiringSoon" and alert["state"] == "firing"
        ]

    alerts = wait_for(firing, 40)
    assert alerts, "CertificateExpiringSoon did not fire for a certificate valid 3 days"
    assert alerts[0]["labels"]["instance"] == stack["servers"]["prometheus"]
    assert alerts[0]["labels"]["severity"] == "warning"


def test_a_replaced_certificate_is_served_without_a_restart(stack, tmp_path):
    """exporter-toolkit reads the certificate on every connection: what lets a renewal skip the restart."""
    files = _tls_files(stack["prom_dir"], "prometheus")
    certificate = Path(files["certificate"])
    original = certificate.read_bytes()
    csr, replacement = tmp_path / "new.csr", tmp_path / "new.crt"
    subprocess.run(
        ["openssl", "req", "-new", "-key", files["key"], "-subj", "/CN=localhost", "-out", str(csr)],
        check=True,
        capture_output=True,
    )
    extensions = tmp_path / "ext.cnf"
    extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    subprocess.run(
        [
            "openssl", "x509", "-req", "-in", str(csr), "-CA", str(stack["ca_dir"] / "ca.crt"),
            "-CAkey", str(stack["ca_dir"] / "ca.key"), "-days", "30", "-set_serial", "4242",
            "-extfile", str(extensions), "-out", str(replacement),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    host, port = stack["servers"]["prometheus"].split(":")

    def served_serial() -> int:
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            stack["context"].wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        out = subprocess.run(
            ["openssl", "x509", "-inform", "DER", "-noout", "-serial"],
            input=der,
            capture_output=True,
            check=True,
        ).stdout
        return int(out.decode().strip().split("=", 1)[1], 16)

    try:
        certificate.write_bytes(replacement.read_bytes())
        assert served_serial() == 4242
    finally:
        certificate.write_bytes(original)
    assert served_serial() != 4242
