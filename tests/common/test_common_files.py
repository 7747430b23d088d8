"""lookout.stack.common_files, run directly as Ansible runs a module (arguments in a JSON file), into a
temporary directory: files, directories and absent paths in one call, in order; what an unchanged call
reports; check mode; the checksums; a file written only while absent (force=false); and the refusals
(content where it does not belong, a directory to remove)."""

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "plugins" / "modules" / "common_files.py"


def run(tmp_path: Path, files: list[dict], check: bool = False, diff: bool = False) -> dict:
    args = tmp_path / "args.json"
    args.write_text(
        json.dumps(
            {"ANSIBLE_MODULE_ARGS": {"files": files, "_ansible_check_mode": check, "_ansible_diff": diff}}
        )
    )
    result = subprocess.run(
        [sys.executable, str(MODULE), str(args)], capture_output=True, text=True, timeout=60, check=False
    )
    return json.loads(result.stdout)


def mode_of(path: Path) -> str:
    return f"{stat.S_IMODE(os.stat(path).st_mode):04o}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("the module sets owners: run as root (CI and the development machine are)")
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_directory_file_and_absent_in_one_call_then_nothing_to_do(root: Path, tmp_path: Path):
    stale = root / "stale.yml"
    stale.write_text("old\n")
    link = root / "old-link"
    link.symlink_to(stale)
    entries = [
        {"path": str(root / "conf.d"), "state": "directory", "mode": "0750"},
        {"path": str(root / "conf.d" / "a.yml"), "content": "a: 1\n", "mode": "0640"},
        {"path": str(stale), "state": "absent"},
        {"path": str(link), "state": "absent"},
        {"path": str(root / "never-there"), "state": "absent"},
    ]
    first = run(tmp_path, entries)
    assert first["changed"] is True, first
    assert first["changed_paths"] == [
        str(root / "conf.d"),
        str(root / "conf.d" / "a.yml"),
        str(stale),
        str(link),
    ]
    assert mode_of(root / "conf.d") == "0750"
    assert (root / "conf.d" / "a.yml").read_text() == "a: 1\n"
    assert mode_of(root / "conf.d" / "a.yml") == "0640"
    assert not stale.exists() and not os.path.lexists(link)

    second = run(tmp_path, entries)
    assert second["changed"] is False, second
    assert second["changed_paths"] == []


def test_directory_mode_is_put_right_and_defaults_to_0755(root: Path, tmp_path: Path):
    (root / "data").mkdir(mode=0o700)
    os.chmod(root / "data", 0o700)
    result = run(tmp_path, [{"path": str(root / "data"), "state": "directory"}])
    assert result["changed_paths"] == [str(root / "data")]
    assert mode_of(root / "data") == "0755"


def test_check_mode_reports_and_changes_nothing(root: Path, tmp_path: Path):
    stale = root / "stale.yml"
    stale.write_text("old\n")
    entries = [
        {"path": str(root / "new-dir"), "state": "directory"},
        {"path": str(stale), "state": "absent"},
    ]
    result = run(tmp_path, entries, check=True, diff=True)
    assert result["changed"] is True
    assert result["changed_paths"] == [str(root / "new-dir"), str(stale)]
    assert [(d["before"], d["after"]) for d in result["diff"]] == [
        ("absent\n", "directory\n"),
        ("present\n", "absent\n"),
    ]
    assert not (root / "new-dir").exists() and stale.exists()


def test_checksums_are_the_files_sha1_in_order_in_check_mode_too(root: Path, tmp_path: Path):
    """What copy and template return as checksum, for callers that record what they wrote."""
    entries = [
        {"path": str(root / "conf.d"), "state": "directory"},
        {"path": str(root / "a.yml"), "content": "a: 1\n"},
        {"path": str(root / "gone"), "state": "absent"},
    ]
    sha1 = hashlib.sha1(b"a: 1\n").hexdigest()
    assert run(tmp_path, entries, check=True)["checksums"] == ["", sha1, ""]
    assert run(tmp_path, entries)["checksums"] == ["", sha1, ""]
    assert run(tmp_path, entries)["checksums"] == ["", sha1, ""]


def test_force_false_writes_a_file_once_then_keeps_its_content(root: Path, tmp_path: Path):
    """A key generated once: new content does not replace it; its owner, group and mode are put right."""
    key = root / "secret_key"
    first = run(tmp_path, [{"path": str(key), "content": "first", "mode": "0640", "force": False}])
    assert first["changed_paths"] == [str(key)]
    assert key.read_text() == "first" and mode_of(key) == "0640"

    again = [{"path": str(key), "content": "second", "mode": "0640", "force": False, "secret": True}]
    checked = run(tmp_path, again, check=True, diff=True)
    assert checked["changed"] is False and checked["diff"] == []
    kept = hashlib.sha1(b"first").hexdigest()
    assert checked["checksums"] == [kept]
    assert run(tmp_path, again)["changed"] is False
    assert key.read_text() == "first"

    os.chmod(key, 0o644)
    repaired = run(tmp_path, again, diff=True)
    assert repaired["changed_paths"] == [str(key)] and repaired["diff"] == []
    assert key.read_text() == "first" and mode_of(key) == "0640"
    assert repaired["checksums"] == [kept]

    # The default (force=true) enforces the content.
    forced = run(tmp_path, [{"path": str(key), "content": "second", "mode": "0640"}])
    assert forced["changed_paths"] == [str(key)] and key.read_text() == "second"


def test_a_failed_check_stops_before_later_removals(root: Path, tmp_path: Path):
    stale = root / "stale.yml"
    stale.write_text("old\n")
    entries = [
        {"path": str(root / "conf.yml"), "content": "bad\n", "validate": "false %s"},
        {"path": str(stale), "state": "absent"},
    ]
    result = run(tmp_path, entries)
    assert result.get("failed") is True
    assert not (root / "conf.yml").exists()
    assert stale.exists(), "an entry after a failed check must not run"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"state": "file"}, "content is required for a file"),
        ({"state": "directory", "content": "x"}, "content is only for state=file, not state=directory"),
        ({"state": "absent", "content": "x"}, "content is only for state=file, not state=absent"),
        ({"state": "absent", "validate": "true %s"}, "validate is not for state=absent"),
        ({"state": "directory", "force": False}, "force=false is only for state=file, not state=directory"),
        ({"state": "absent", "force": False}, "force=false is only for state=file, not state=absent"),
    ],
)
def test_entries_that_do_not_fit_their_state_are_refused(
    root: Path, tmp_path: Path, entry: dict, message: str
):
    result = run(tmp_path, [{"path": str(root / "x"), **entry}])
    assert result.get("failed") is True
    assert result["msg"] == f"{root / 'x'}: {message}"
    assert not (root / "x").exists()


def test_absent_refuses_a_directory_and_a_directory_refuses_a_file(root: Path, tmp_path: Path):
    (root / "d").mkdir()
    (root / "f").write_text("x")
    result = run(tmp_path, [{"path": str(root / "d"), "state": "absent"}])
    assert result.get("failed") is True and "this is a directory" in result["msg"]
    assert (root / "d").is_dir()
    result = run(tmp_path, [{"path": str(root / "f"), "state": "directory"}])
    assert result.get("failed") is True and "something else is there" in result["msg"]
    assert (root / "f").read_text() == "x"
