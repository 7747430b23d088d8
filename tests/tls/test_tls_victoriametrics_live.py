"""VictoriaMetrics (Debian 12's 1.79) with TLS as the victoriametrics role renders its command line
(victoriametrics_tls_enabled: -tls, -tlsCertFile, -tlsKeyFile naming the files of common's tls entry) and a
certificate that entry signs with a test CA: the HTTP API verifies against the CA, plain HTTP gets no page
(the connection is closed), and a client that does not trust the CA fails the handshake. The files are
issued into a scratch directory; the rendered flags name the host's paths, which the test maps onto them."""

import grp
import os
import pwd
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml
from controller_helpers import ROOT, ansible_playbook, free_port, local_host, wait_for

sys.path.insert(0, str(ROOT / "tests" / "victoriametrics"))
from victoriametrics_helpers import BINARY, render

HOST_DIR = "/etc/victoriametrics/tls"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not BINARY.exists():
        pytest.skip("Debian's victoria-metrics is not on this controller (make setup)")
    work = tmp_path_factory.mktemp("vm-tls")
    port = free_port()
    (work / "render").mkdir()
    rendered = render(
        work / "render",
        {"vm": {"victoriametrics_tls_enabled": True, "victoriametrics_listen_address": "127.0.0.1",
                "victoriametrics_port": port, "victoriametrics_storage_path": str(work / "data")}},
    )["vm"]  # fmt: skip
    assert rendered.failure == "", rendered.failure
    files = {kind: str(work / "tls" / f"victoriametrics{suffix}") for kind, suffix in
             (("certificate", ".crt"), ("key", ".key"), ("ca", "-ca.crt"))}  # fmt: skip
    play = [
        {
            "name": "The certificate from common's tls entry",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Take the certificate",
                    "ansible.builtin.include_role": {"name": "common", "tasks_from": "tls"},
                    "vars": {
                        "common_tls_role": "victoriametrics",
                        "common_tls_files": files,
                        "common_tls_group": grp.getgrgid(os.getgid()).gr_name,
                    },
                }
            ],
        }
    ]
    (work / "tls.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    host = local_host(
        victoriametrics_tls_names=["localhost"],
        victoriametrics_tls_certificate="",
        victoriametrics_tls_key="",
        victoriametrics_tls_ca_name="vm-tls-live",
        victoriametrics_tls_ca_dir=str(work / "ca"),
        victoriametrics_tls_ca_certificate="",
        victoriametrics_tls_ca_key="",
        common_certificate_owner=pwd.getpwuid(os.getuid()).pw_name,
        common_certificate_packages=[],
        common_ca_trust_path="",
    )
    run = ansible_playbook(work / "tls.yml", {"all": {"hosts": {"vm": host}}}, work)
    assert run.returncode == 0, run.stdout + run.stderr
    flags = [
        flag.replace(f"{HOST_DIR}/victoriametrics.crt", files["certificate"]).replace(
            f"{HOST_DIR}/victoriametrics.key", files["key"]
        )
        for flag in rendered.flags
    ]
    assert "-tls" in flags and f"-tlsCertFile={files['certificate']}" in flags, rendered.flags
    assert f"-tlsKeyFile={files['key']}" in flags, rendered.flags
    log = work / "vm.log"
    with log.open("w") as out:
        process = subprocess.Popen(flags, env={"PATH": "/usr/bin:/bin"}, stdout=out, stderr=out)
    context = ssl.create_default_context(cafile=files["ca"])
    try:
        assert wait_for(lambda: _status(f"https://127.0.0.1:{port}/health", context) == 200, 30), (
            log.read_text()
        )
        yield {"port": port, "context": context}
    finally:
        process.terminate()
        process.wait(timeout=15)


def _status(url: str, context: ssl.SSLContext) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError:
        return 0


def test_https_verifies_against_the_ca(server):
    assert _status(f"https://127.0.0.1:{server['port']}/api/v1/labels", server["context"]) == 200


def test_plain_http_is_refused(server):
    """VictoriaMetrics 1.79 closes the connection (exporter-toolkit's servers answer 400): no page."""
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=5) as raw:
        raw.sendall(b"GET /api/v1/labels HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        try:
            answer = raw.recv(200)
        except ConnectionResetError:
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.0 400"), answer


def test_a_client_without_the_ca_fails_the_handshake(server):
    with (
        socket.create_connection(("127.0.0.1", server["port"]), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1")
