"""The scripts CI runs (scripts/ci-version.sh, ci-cherry-pick.sh, ci-deploy.sh), run here on throw-away git
repositories and a stand-in ansible-playbook that records how it was called."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
CI_VARS = ("GITHUB_SHA", "GITHUB_RUN_NUMBER", "GITHUB_REF_NAME", "GITHUB_STEP_SUMMARY", "LOOKOUT_TRUNK")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in CI_VARS and not k.startswith("LOOKOUT_")}
    return {**env, **GIT_ENV, **extra}


def run(args, cwd, check=True, **env):
    result = subprocess.run(
        args, check=False, cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def git(repo, *args) -> str:
    return run(["git", *args], repo).stdout.strip()


def commit(repo: Path, path: str, text: str, message: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repository shaped like lookout for the scripts: scripts/ and app/conduit/_version.py on main."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for script in ("ci-version.sh", "ci-cherry-pick.sh"):
        shutil.copy2(ROOT / "scripts" / script, repo / "scripts" / script)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "scripts")
    commit(repo, "app/conduit/_version.py", '__version__ = "1.4.0"\n', "app 1.4.0")
    commit(repo, "service.txt", "a\nb\nc\n", "service")
    return repo


# --- ci-version.sh ------------------------------------------------------------------------------


def test_sha_version(repo):
    sha = git(repo, "rev-parse", "--short=8", "HEAD")
    out = run(["scripts/ci-version.sh", "sha"], repo, GITHUB_RUN_NUMBER="17").stdout.strip()
    assert out == f"1.4.0.dev17+g{sha}"
    assert run(["scripts/ci-version.sh", "sha"], repo).stdout.strip() == f"1.4.0.dev0+g{sha}"


def test_sha_version_is_a_pep440_version(repo):
    packaging = pytest.importorskip("packaging.version")
    out = run(["scripts/ci-version.sh", "sha"], repo, GITHUB_RUN_NUMBER="3").stdout.strip()
    assert str(packaging.Version(out)) == out


def test_release_versions_count_hotfixes_since_the_cut(repo):
    git(repo, "switch", "-q", "-c", "release/1.4")
    assert run(["scripts/ci-version.sh", "release"], repo).stdout.strip() == "1.4.0"
    # main moves on; the release branch's versions do not care.
    git(repo, "switch", "-q", "main")
    commit(repo, "next.txt", "x\n", "next sprint work")
    git(repo, "switch", "-q", "release/1.4")
    commit(repo, "service.txt", "a\nB\nc\n", "hot-fix 1")
    assert run(["scripts/ci-version.sh", "release"], repo).stdout.strip() == "1.4.1"
    # A hot-fix merged with a merge commit counts once (first-parent line).
    git(repo, "switch", "-q", "-c", "hotfix/two")
    commit(repo, "fix2a.txt", "1\n", "hot-fix 2 part a")
    commit(repo, "fix2b.txt", "2\n", "hot-fix 2 part b")
    git(repo, "switch", "-q", "release/1.4")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge hotfix/two", "hotfix/two")
    assert run(["scripts/ci-version.sh", "release"], repo).stdout.strip() == "1.4.2"


def test_release_version_from_ci_variables(repo):
    git(repo, "switch", "-q", "-c", "release/2.0")
    head = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "--detach", head)
    out = run(["scripts/ci-version.sh", "release"], repo, GITHUB_REF_NAME="release/2.0", GITHUB_SHA=head)
    assert out.stdout.strip() == "2.0.0"


def test_release_version_needs_a_release_branch(repo):
    result = run(["scripts/ci-version.sh", "release"], repo, check=False)
    assert result.returncode == 1
    assert "release/X.Y" in result.stderr


def test_release_version_refuses_a_tag_on_another_commit(repo):
    git(repo, "switch", "-q", "-c", "release/1.4")
    commit(repo, "service.txt", "fix\n", "hot-fix")
    git(repo, "tag", "v1.4.1", "HEAD~1")
    result = run(["scripts/ci-version.sh", "release"], repo, check=False)
    assert result.returncode == 1
    assert "tag v1.4.1 already names" in result.stderr
    git(repo, "tag", "-f", "v1.4.1", "HEAD")
    assert run(["scripts/ci-version.sh", "release"], repo).stdout.strip() == "1.4.1"


# --- ci-cherry-pick.sh --------------------------------------------------------------------------


def _release_with_hotfix(repo, fix_text="a\nFIXED\nc\n"):
    git(repo, "switch", "-q", "-c", "release/1.4")
    before = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")
    commit(repo, "next.txt", "x\n", "next sprint work")
    git(repo, "switch", "-q", "release/1.4")
    after = commit(repo, "service.txt", fix_text, "Fix the service")
    return before, after


def test_cherry_pick_carries_the_hotfix_onto_main(repo):
    before, after = _release_with_hotfix(repo)
    result = run(["scripts/ci-cherry-pick.sh", before, after, "--dry-run"], repo)
    branch = f"cherry-pick/release-1.4-{after[:8]}"
    assert branch in result.stderr
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == branch
    assert git(repo, "rev-parse", "HEAD~1") == git(repo, "rev-parse", "main")
    assert (repo / "service.txt").read_text() == "a\nFIXED\nc\n"
    assert (repo / "next.txt").is_file()
    assert f"(cherry picked from commit {after})" in git(repo, "log", "-1", "--format=%B")


def test_cherry_pick_skips_what_main_has(repo):
    before, after = _release_with_hotfix(repo)
    git(repo, "switch", "-q", "main")
    git(repo, "cherry-pick", "-x", after)
    git(repo, "switch", "-q", "release/1.4")
    result = run(["scripts/ci-cherry-pick.sh", before, after, "--dry-run"], repo)
    assert "nothing to cherry-pick" in result.stderr
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "release/1.4"


def test_cherry_pick_conflict_lists_the_commits_and_leaves_a_clean_tree(repo):
    git(repo, "switch", "-q", "-c", "release/1.4")
    before = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")
    commit(repo, "service.txt", "a\nmain's b\nc\n", "main changes b")
    git(repo, "switch", "-q", "release/1.4")
    after = commit(repo, "service.txt", "a\nrelease's b\nc\n", "release fixes b")
    result = run(["scripts/ci-cherry-pick.sh", before, after, "--dry-run"], repo, check=False)
    assert result.returncode == 1
    assert f"git cherry-pick -x {after}" in result.stderr
    assert git(repo, "status", "--porcelain") == ""


# --- ci-deploy.sh -------------------------------------------------------------------------------

FAKE_PLAYBOOK = """#!/usr/bin/env bash
# Stand-in for ansible-playbook: records its arguments, the vault password file, the ssh-agent's keys
# and the ssh settings, and prints what a run with one change prints.
out=$FAKE_RECORD
printf '%s\\n' "$@" >"$out/args"
prev=""
for a in "$@"; do
  if [ "$prev" = --vault-id ]; then
    file=${a#*@}
    cat "$file" >"$out/vault"
    stat -c %a "$file" >"$out/vault-mode"
    echo "$file" >"$out/vault-path"
  fi
  prev=$a
done
ssh-add -l >"$out/agent" 2>&1 || true
printf '%s\\n' "${ANSIBLE_HOST_KEY_CHECKING:-unset}" "${ANSIBLE_SSH_COMMON_ARGS:-unset}" >"$out/ssh"
# ANSIBLE_FORCE_COLOR (molecule sets it, so may an operator): escapes around names and counts.
if [ -n "${ANSIBLE_FORCE_COLOR:-}" ]; then c=$'\\e[0;33m' o=$'\\e[0m'; else c="" o=""; fi
echo "TASK [conduit : Install the wheel] ***"
[ -n "${FAKE_UNCHANGED:-}" ] && echo "ok: [web1]" || echo "${c}changed: [web1]${o}"
echo "TASK [conduit : Restart gunicorn] ***"
echo "ok: [web1]"
echo "PLAY RECAP ***"
printf '%s\r\n' "${c}web1${o} : ok=2 ${c}changed=1${o} unreachable=0 failed=0"
exit "${FAKE_RC:-0}"
"""


@pytest.fixture
def deploy_root(tmp_path) -> Path:
    root = tmp_path / "lookout"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "ci-deploy.sh", root / "scripts" / "ci-deploy.sh")
    (root / "playbooks").mkdir()
    (root / "playbooks" / "deploy.yml").write_text("- hosts: web\n")
    (root / "inventories" / "testing").mkdir(parents=True)
    (root / "ansible.cfg").write_text("[defaults]\n")
    (root / "artifacts").mkdir()
    (root / "artifacts" / "conduit-1.4.1-py3-none-any.whl").write_bytes(b"wheel")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ansible-playbook"
    fake.write_text(FAKE_PLAYBOOK)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "record").mkdir()
    return root


def deploy(root: Path, *args, check=True, **env):
    tmp = root.parent
    return run(
        ["scripts/ci-deploy.sh", *args],
        root,
        check=check,
        PATH=f"{tmp / 'bin'}:{os.environ['PATH']}",
        FAKE_RECORD=str(tmp / "record"),
        **env,
    )


def recorded(root: Path, name: str) -> str:
    return (root.parent / "record" / name).read_text()


def test_deploy_runs_the_operators_playbook_with_the_built_wheel(deploy_root):
    deploy(deploy_root, "testing", "1.4.1")
    args = recorded(deploy_root, "args").splitlines()
    wheel = deploy_root / "artifacts" / "conduit-1.4.1-py3-none-any.whl"
    assert args == [
        "-i", "inventories/testing", "playbooks/deploy.yml", "-e", "conduit_version=1.4.1",
        "-e", f"conduit_app_wheel={wheel}",
    ]  # fmt: skip
    assert recorded(deploy_root, "ssh").splitlines() == ["unset", "unset"]


def test_without_a_wheel_the_role_builds_the_version(deploy_root):
    (deploy_root / "artifacts" / "conduit-1.4.1-py3-none-any.whl").unlink()
    deploy(deploy_root, "testing", "1.4.1")
    args = recorded(deploy_root, "args").splitlines()
    assert args == ["-i", "inventories/testing", "playbooks/deploy.yml", "-e", "conduit_version=1.4.1"]


def test_preview_is_check_and_diff(deploy_root):
    deploy(deploy_root, "testing", "1.4.1", "--check", "--", "--limit", "web1")
    args = recorded(deploy_root, "args").splitlines()
    assert args[-4:] == ["--check", "--diff", "--limit", "web1"]


def test_secrets_come_from_the_environment_and_leave_no_file(deploy_root, tmp_path):
    if not shutil.which("ssh-agent") or not shutil.which("ssh-keygen"):
        pytest.skip("ssh-agent/ssh-keygen not installed")
    key = tmp_path / "id_ed25519"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deploy@lookout", "-f", str(key)], tmp_path)
    result = deploy(
        deploy_root,
        "testing",
        "1.4.1",
        LOOKOUT_VAULT_PASSWORD="s3cret vault",
        LOOKOUT_SSH_PRIVATE_KEY=key.read_text(),
        LOOKOUT_SSH_KNOWN_HOSTS="web1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
    )
    args = recorded(deploy_root, "args").splitlines()
    vault_id = args[args.index("--vault-id") + 1]
    assert vault_id.startswith("testing@")
    assert recorded(deploy_root, "vault") == "s3cret vault\n"
    assert recorded(deploy_root, "vault-mode").strip() == "600"
    assert not Path(recorded(deploy_root, "vault-path").strip()).exists()
    assert "deploy@lookout" in recorded(deploy_root, "agent")
    checking, ssh_args = recorded(deploy_root, "ssh").splitlines()
    assert checking == "True"
    assert "StrictHostKeyChecking=yes" in ssh_args
    assert "s3cret" not in result.stdout + result.stderr + " ".join(args)


def test_several_inventories(deploy_root):
    (deploy_root / "extra.yml").write_text("all: {}\n")
    deploy(deploy_root, "testing", "1.4.1", LOOKOUT_INVENTORY="inventories/testing extra.yml")
    args = recorded(deploy_root, "args").splitlines()
    assert args[:5] == ["-i", "inventories/testing", "-i", "extra.yml", "playbooks/deploy.yml"]


def test_wheel_of_another_version_is_refused(deploy_root):
    wheel = "artifacts/conduit-1.4.1-py3-none-any.whl"
    result = deploy(deploy_root, "testing", "1.4.2", "--wheel", wheel, check=False)
    assert result.returncode == 2
    assert "holds version 1.4.1, not 1.4.2" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["staging", "1.0.0"], "no inventory inventories/staging"),
        (["../etc", "1.0.0"], "no environment name"),
        (["testing", "1.0; rm -rf /"], "no version"),
    ],
)
def test_bad_arguments_are_refused(deploy_root, args, message):
    result = deploy(deploy_root, *args, check=False)
    assert result.returncode == 2
    assert message in result.stderr


def test_summary_says_when_nothing_changes(deploy_root, tmp_path):
    summary = tmp_path / "summary.md"
    deploy(deploy_root, "testing", "1.4.1", "--check", FAKE_UNCHANGED="1", GITHUB_STEP_SUMMARY=str(summary))
    assert "would change something:\n\n- none\n" in summary.read_text()


def test_summary_reads_a_coloured_log(deploy_root, tmp_path):
    summary = tmp_path / "summary.md"
    deploy(deploy_root, "testing", "1.4.1", ANSIBLE_FORCE_COLOR="1", GITHUB_STEP_SUMMARY=str(summary))
    text = summary.read_text()
    assert "changed something:\n\n- conduit : Install the wheel\n" in text
    assert "web1 : ok=2 changed=1 unreachable=0 failed=0\n" in text
    assert "\x1b" not in text and "\r" not in text


def test_failure_is_passed_on_and_summarised(deploy_root, tmp_path):
    summary = tmp_path / "summary.md"
    result = deploy(
        deploy_root, "testing", "1.4.1", "--check", check=False, FAKE_RC="4", GITHUB_STEP_SUMMARY=str(summary)
    )
    assert result.returncode == 4
    text = summary.read_text()
    assert "preview (--check --diff) of conduit `1.4.1` to `testing`: failed (4)" in text
    assert "- conduit : Install the wheel" in text
    assert "Restart gunicorn" not in text
    assert "PLAY RECAP" in text
