"""roles/common's install_archive entry, on the controller itself (connection local): the archive is
fetched once into the controller cache with its sha256 checked, from a mirror URL or a local file
(air-gapped), and only the named binary reaches the host. A converged run needs no network at all; a
wrong checksum stops before the host gets anything."""

import hashlib
import http.server
import io
import re
import tarfile
import threading

import pytest
import yaml
from controller_helpers import ansible_playbook, local_host

NAME = "demo_exporter-1.0.0.linux-amd64"


@pytest.fixture
def archive(tmp_path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        for member, content in (
            (f"{NAME}/demo_exporter", b"#!/bin/sh\necho demo\n"),
            (f"{NAME}/LICENSE", b"x"),
        ):
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(content), 0o755
            tar.addfile(info, io.BytesIO(content))
    path = tmp_path / "mirror" / f"{NAME}.tar.gz"
    path.parent.mkdir()
    path.write_bytes(data.getvalue())
    return path


def _install(tmp_path, **inputs):
    (tmp_path / "bin").mkdir(exist_ok=True)
    playbook = tmp_path / "install.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Install from an archive",
                    "hosts": "all",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Install",
                            "ansible.builtin.include_role": {
                                "name": "common",
                                "tasks_from": "install_archive",
                            },
                        }
                    ],
                }
            ]
        )
    )
    host = local_host(
        **{
            "common_archive_name": f"{NAME}.tar.gz",
            "common_archive_binaries": [{"src": f"{NAME}/demo_exporter"}],
            "common_archive_cache_dir": str(tmp_path / "cache"),
            "common_archive_bin_dir": str(tmp_path / "bin"),
            # Never reached: the local-file case downloads nothing.
            "common_archive_url": "http://127.0.0.1:9/unused",
            **inputs,
        }
    )
    run = ansible_playbook(playbook, {"all": {"hosts": {"host": host}}}, tmp_path)
    changed = sum(int(n) for n in re.findall(r"changed=(\d+)", run.stdout))
    return run, changed


def _serve(directory):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_from_a_mirror_once_then_without_network(tmp_path, archive):
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    server = _serve(archive.parent)
    url = f"http://127.0.0.1:{server.server_address[1]}/{archive.name}"
    try:
        first, changed = _install(tmp_path, common_archive_url=url, common_archive_sha256=sha256)
    finally:
        server.shutdown()
        server.server_close()
    assert first.returncode == 0, first.stdout + first.stderr
    assert changed > 0
    assert (tmp_path / "bin" / "demo_exporter").read_bytes().startswith(b"#!/bin/sh")
    assert not (tmp_path / "bin" / "LICENSE").exists()
    # The mirror is gone: a converged run must not need it.
    again, changed = _install(tmp_path, common_archive_url=url, common_archive_sha256=sha256)
    assert again.returncode == 0, again.stdout + again.stderr
    assert changed == 0


def test_from_a_local_file(tmp_path, archive):
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    run, changed = _install(tmp_path, common_archive_src=str(archive), common_archive_sha256=sha256)
    assert run.returncode == 0, run.stdout + run.stderr
    assert changed > 0
    assert (tmp_path / "bin" / "demo_exporter").exists()


def test_a_wrong_checksum_stops_before_the_host(tmp_path, archive):
    run, _ = _install(tmp_path, common_archive_src=str(archive), common_archive_sha256="0" * 64)
    assert run.returncode != 0
    assert "checksum" in run.stdout.lower()
    assert not (tmp_path / "bin" / "demo_exporter").exists()
