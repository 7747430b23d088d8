"""The blackbox exporter's modules, rendered by the role's `render` entry point, checked by the exporter's
own `--config.check` (Debian's binary, extracted on the controller from the package in the local cache),
and probing for real: http_2xx against a local HTTP server, tcp_connect against its port. With basic auth
on, the rendered web configuration verifies against the password and passes `promtool check web-config`,
and the exporter started with it answers 401 without (or with wrong) credentials and 200 with them, on
/probe as on every other path."""

import base64
import http.server
import os
import shutil
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from controller_helpers import ansible_playbook, http_get, local_host

DEB_CACHE = Path(os.environ.get("LOOKOUT_DEB_CACHE", Path.home() / ".cache" / "lookout" / "debs"))
SHIPPED = {"http_2xx": "http", "http_2xx_tls": "http", "tcp_connect": "tcp", "icmp": "icmp"}


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def _free_port() -> int:
    """A port nothing listens on now, for the exporter: parallel workers and other runs never share one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _render(workdir: Path, name: str, host: str, hostvars: dict) -> subprocess.CompletedProcess:
    """Runs the role's render entry on the controller for one host with these inputs; the files land in
    blackbox_exporter_render_dir."""
    play = {
        "name": name,
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Render",
                "ansible.builtin.include_role": {"name": "blackbox_exporter", "tasks_from": "render"},
            }
        ],
    }
    playbook = workdir / "render.yml"
    playbook.write_text(yaml.safe_dump([play]))
    run = ansible_playbook(playbook, {"all": {"hosts": {host: local_host(**hostvars)}}}, workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("blackbox-render")
    _render(workdir, "Render blackbox.yml", "controller", {"blackbox_exporter_render_dir": str(workdir)})
    return workdir / "blackbox.yml"


@pytest.fixture(scope="module")
def exporter(tmp_path_factory) -> Path:
    """Debian's blackbox exporter, from the package (downloaded into the cache once)."""
    DEB_CACHE.mkdir(parents=True, exist_ok=True)
    debs = sorted(DEB_CACHE.glob("prometheus-blackbox-exporter_*.deb"))
    if not debs:
        if not shutil.which("apt-get"):
            pytest.skip("no apt-get on this controller to fetch Debian's blackbox exporter")
        fetched = _run("apt-get", "download", "-qq", "prometheus-blackbox-exporter", cwd=DEB_CACHE)
        assert fetched.returncode == 0, fetched.stderr
        debs = sorted(DEB_CACHE.glob("prometheus-blackbox-exporter_*.deb"))
    root = tmp_path_factory.mktemp("blackbox-deb")
    extracted = _run("dpkg-deb", "-x", str(debs[-1]), str(root))
    assert extracted.returncode == 0, extracted.stderr
    return root / "usr" / "bin" / "prometheus-blackbox-exporter"


def test_the_shipped_modules(rendered):
    modules = yaml.safe_load(rendered.read_text())["modules"]
    assert {name: module["prober"] for name, module in modules.items()} == SHIPPED
    tls = modules["http_2xx_tls"]["http"]
    assert tls["fail_if_not_ssl"] is True
    assert tls["tls_config"]["insecure_skip_verify"] is False


def test_the_exporter_accepts_the_modules(rendered, exporter):
    check = _run(str(exporter), "--config.check", f"--config.file={rendered}")
    assert check.returncode == 0, check.stderr


def test_the_exporter_refuses_a_broken_module(rendered, exporter, tmp_path):
    broken = yaml.safe_load(rendered.read_text())
    broken["modules"]["broken"] = {"prober": "http", "timeout": "soon"}
    config = tmp_path / "blackbox.yml"
    config.write_text(yaml.safe_dump(broken))
    check = _run(str(exporter), "--config.check", f"--config.file={config}")
    assert check.returncode != 0


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_the_modules_probe(rendered, exporter, tmp_path):
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    listen = f"127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [str(exporter), f"--config.file={rendered}", f"--web.listen-address={listen}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        target = f"127.0.0.1:{site.server_address[1]}"
        results = {}
        for module, probe_target in (("http_2xx", f"http://{target}/"), ("tcp_connect", target)):
            for _ in range(50):
                try:
                    url = f"http://{listen}/probe?module={module}&target={probe_target}"
                    body = urllib.request.urlopen(url, timeout=5).read().decode()
                    break
                except OSError:
                    threading.Event().wait(0.1)
            else:
                pytest.fail("the exporter did not answer")
            results[module] = [line for line in body.splitlines() if line.startswith("probe_success")]
        # A plain-HTTP site fails the TLS module: it insists on TLS.
        url = f"http://{listen}/probe?module=http_2xx_tls&target=http://{target}/"
        body = urllib.request.urlopen(url, timeout=10).read().decode()
        results["http_2xx_tls"] = [line for line in body.splitlines() if line.startswith("probe_success")]
    finally:
        process.terminate()
        process.wait(timeout=10)
        site.shutdown()
    assert results == {
        "http_2xx": ["probe_success 1"],
        "tcp_connect": ["probe_success 1"],
        "http_2xx_tls": ["probe_success 0"],
    }


AUTH_USER = "lookout"
AUTH_PASSWORD = "blackbox-test-password"


@pytest.fixture(scope="module")
def rendered_with_auth(tmp_path_factory) -> Path:
    """The role's render entry with basic auth on; the configuration directory is the render directory, so
    the web configuration lands where the exporter is told to read it."""
    workdir = tmp_path_factory.mktemp("blackbox-auth-render")
    hostvars = {
        "blackbox_exporter_render_dir": str(workdir),
        "blackbox_exporter_config_dir": str(workdir),
        "blackbox_exporter_web_basic_auth_enabled": True,
        "blackbox_exporter_web_basic_auth_users": {AUTH_USER: AUTH_PASSWORD},
    }
    run = _render(workdir, "Render blackbox.yml and blackbox-web.yml", "monitor1", hostvars)
    assert AUTH_PASSWORD not in run.stdout + run.stderr
    return workdir


def test_the_rendered_web_configuration(rendered_with_auth):
    import bcrypt

    web = rendered_with_auth / "blackbox-web.yml"
    text = web.read_text()
    assert AUTH_PASSWORD not in text
    users = yaml.safe_load(text)["basic_auth_users"]
    assert list(users) == [AUTH_USER]
    assert bcrypt.checkpw(AUTH_PASSWORD.encode(), users[AUTH_USER].encode())
    check = _run(shutil.which("promtool") or "promtool", "check", "web-config", str(web))
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_exporter_requires_the_user(rendered_with_auth, exporter):
    site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    listen = f"127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [
            str(exporter),
            f"--config.file={rendered_with_auth / 'blackbox.yml'}",
            f"--web.config.file={rendered_with_auth / 'blackbox-web.yml'}",
            f"--web.listen-address={listen}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if http_get(f"http://{listen}/-/ready", AUTH_USER, AUTH_PASSWORD, timeout=10)[0] == 200:
                break
            threading.Event().wait(0.1)
        probe = f"http://{listen}/probe?module=http_2xx&target=http://127.0.0.1:{site.server_address[1]}/"
        statuses = {
            path: (
                http_get(f"http://{listen}{path}", timeout=10)[0],
                http_get(f"http://{listen}{path}", AUTH_USER, "wrong-password", timeout=10)[0],
                http_get(f"http://{listen}{path}", AUTH_USER, AUTH_PASSWORD, timeout=10)[0],
            )
            for path in ("/-/ready", "/metrics", "/")
        }
        statuses["/probe"] = (
            http_get(probe, timeout=10)[0],
            http_get(probe, AUTH_USER, "wrong-password", timeout=10)[0],
            http_get(probe, AUTH_USER, AUTH_PASSWORD, timeout=10)[0],
        )
        request = urllib.request.Request(probe)
        token = base64.b64encode(f"{AUTH_USER}:{AUTH_PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        body = urllib.request.urlopen(request, timeout=10).read().decode()
    finally:
        process.terminate()
        process.wait(timeout=10)
        site.shutdown()
    assert statuses == {path: (401, 401, 200) for path in ("/-/ready", "/metrics", "/", "/probe")}
    assert "probe_success 1" in body.splitlines()
