"""The GitHub workflows do what docs/cicd.md says they do.

The table "Triggers, jobs, environments" in docs/cicd.md is the contract: each row is an event (and
branches) starting a workflow, the `if:` of the job that deploys, the jobs that run, the environment
deployed to and the approval environment in between. These tests read the table and the workflow YAML
and fail on any difference in either direction, then check the rules every workflow keeps (least
privilege, no inline secrets, previews before deploys, the molecule matrix covering every scenario).
"""

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
DOC = ROOT / "docs" / "cicd.md"
DEPLOY_WORKFLOW = "./.github/workflows/deploy.yml"
BUILD_WORKFLOW = "./.github/workflows/build.yml"
NONE = "—"
DEPLOY_SECRETS = {"LOOKOUT_VAULT_PASSWORD", "LOOKOUT_SSH_PRIVATE_KEY", "LOOKOUT_SSH_KNOWN_HOSTS"}
OTHER_SECRETS = {"LOOKOUT_BOT_TOKEN"}


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean true.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {event: {} for event in on}
    return {event: spec or {} for event, spec in on.items()}


def _condition(expression) -> str:
    """An `if:` as written, without the optional ${{ }} and with whitespace collapsed."""
    if expression is None:
        return NONE
    text = " ".join(str(expression).split())
    match = re.fullmatch(r"\$\{\{\s*(.*?)\s*\}\}", text)
    return match.group(1) if match else text


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def _doc_rows() -> list[dict]:
    """Rows of the first table under the heading 'Triggers, jobs, environments'."""
    text = DOC.read_text()
    section = text.split("## Triggers, jobs, environments", 1)
    assert len(section) == 2, "docs/cicd.md has no section 'Triggers, jobs, environments'"
    lines = [line for line in section[1].splitlines() if line.startswith("|")]
    header = [h.lower() for h in _cells(lines[0])]
    assert header == ["event", "branches", "condition", "workflow", "jobs", "environment", "approval"]
    assert set(_cells(lines[1])) <= {"---", ":---", "---:", ":---:"}
    rows = []
    for line in lines[2:]:
        cells = dict(zip(header, _cells(line), strict=True))
        rows.append(
            {
                "event": _code_spans(cells["event"])[0],
                "branches": frozenset(_code_spans(cells["branches"])),
                "condition": (_code_spans(cells["condition"]) or [NONE])[0],
                "workflow": _code_spans(cells["workflow"])[0],
                "jobs": {job.strip() for job in cells["jobs"].split(",")},
                "environment": (_code_spans(cells["environment"]) or [NONE])[0],
                "approval": (_code_spans(cells["approval"]) or [NONE])[0],
            }
        )
    return rows


ROWS = _doc_rows()


def _workflow(name: str) -> dict:
    path = WORKFLOWS / name
    assert path.is_file(), f"docs/cicd.md names {name}, which is not in .github/workflows/"
    return _load(path)


def _all_workflows() -> dict[str, dict]:
    return {path.name: _load(path) for path in sorted(WORKFLOWS.glob("*.yml"))}


def _started_workflows() -> dict[str, dict]:
    """Workflows started by an event (not only callable by other workflows)."""
    return {
        name: workflow
        for name, workflow in _all_workflows().items()
        if set(_triggers(workflow)) - {"workflow_call"}
    }


def _deploy_jobs(workflow: dict) -> dict[str, dict]:
    return {job_id: job for job_id, job in workflow["jobs"].items() if job.get("uses") == DEPLOY_WORKFLOW}


def _job_ids(workflow: dict, seen: frozenset = frozenset()) -> set[str]:
    """Job ids of a workflow and of every reusable workflow it calls, recursively."""
    ids = set()
    for job_id, job in workflow["jobs"].items():
        ids.add(job_id)
        uses = job.get("uses", "")
        if uses.startswith("./.github/workflows/") and uses not in seen:
            ids |= _job_ids(_load(ROOT / uses), seen | {uses})
    return ids


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_doc_table_has_rows():
    assert len(ROWS) >= 5


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['workflow']}:{r['event']}:{r['condition']}")
def test_row_trigger_matches_workflow(row):
    triggers = _triggers(_workflow(row["workflow"]))
    assert row["event"] in triggers, f"{row['workflow']} is not started by {row['event']}"
    assert frozenset(triggers[row["event"]].get("branches", [])) == row["branches"]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['workflow']}:{r['event']}:{r['condition']}")
def test_row_jobs_exist(row):
    missing = row["jobs"] - _job_ids(_workflow(row["workflow"]))
    assert not missing, f"{row['workflow']} runs no job named {sorted(missing)}"


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['workflow']}:{r['event']}:{r['condition']}")
def test_row_jobs_match_deploy_stages(row):
    deploys = row["environment"] != NONE
    assert ({"preview", "deploy"} <= row["jobs"]) == deploys
    assert ("approve" in row["jobs"]) == (row["approval"] != NONE)


def test_every_trigger_is_in_the_doc():
    documented = {(row["workflow"], row["event"], row["branches"]) for row in ROWS}
    actual = {
        (name, event, frozenset(spec.get("branches", [])))
        for name, workflow in _started_workflows().items()
        for event, spec in _triggers(workflow).items()
        if event != "workflow_call"
    }
    assert actual == documented


def test_trigger_to_environment_mapping():
    """(workflow, deploy condition) -> (environment, approval): the table and the deploy jobs agree."""
    documented = {
        (row["workflow"], row["condition"], row["environment"], row["approval"])
        for row in ROWS
        if row["environment"] != NONE
    }
    actual = {
        (
            name,
            _condition(job.get("if")),
            job["with"]["environment"],
            job["with"].get("approval-environment", NONE),
        )
        for name, workflow in _started_workflows().items()
        for job in _deploy_jobs(workflow).values()
    }
    assert actual == documented


def test_workflows_without_environment_deploy_nothing():
    for row in ROWS:
        if row["environment"] == NONE:
            assert not _deploy_jobs(_workflow(row["workflow"])), row["workflow"]


def test_environments_are_inventories():
    for row in ROWS:
        if row["environment"] != NONE:
            assert (ROOT / "inventories" / row["environment"]).is_dir(), row["environment"]
            assert row["approval"] != row["environment"]


def test_hotfix_deploys_need_approval_and_cut_does_not():
    by_condition = {row["condition"]: row for row in ROWS if row["workflow"] == "release.yml"}
    assert by_condition["github.event.created"]["approval"] == NONE
    assert by_condition["!github.event.created"]["approval"] != NONE
    assert "cherry-pick" in by_condition["!github.event.created"]["jobs"]
    cherry_pick = _workflow("release.yml")["jobs"]["cherry-pick"]
    assert _condition(cherry_pick["if"]) == "!github.event.created"


def test_production_is_manual_and_approved():
    rows = [row for row in ROWS if row["environment"] == "production"]
    assert rows
    assert all(row["event"] == "workflow_dispatch" and row["approval"] != NONE for row in rows)
    inputs = _triggers(_workflow("production.yml"))["workflow_dispatch"]["inputs"]
    assert inputs["version"]["required"] is True


def test_deploy_previews_before_it_deploys():
    deploy = _workflow("deploy.yml")
    jobs = deploy["jobs"]
    assert set(jobs["deploy"]["needs"]) == {"preview", "approve"}
    assert jobs["approve"]["needs"] == "preview"
    assert jobs["approve"]["environment"] == "${{ inputs.approval-environment }}"
    preview_step = next(s for s in jobs["preview"]["steps"] if s.get("uses") == "./.github/actions/deploy")
    deploy_step = next(s for s in jobs["deploy"]["steps"] if s.get("uses") == "./.github/actions/deploy")
    assert preview_step["with"]["check"] == "true"
    assert deploy_step["with"].get("check", "false") == "false"
    # The deploy step hands the flag to the same script the operators run.
    run = _load(ACTIONS / "deploy" / "action.yml")["runs"]["steps"][-1]["run"]
    assert "scripts/ci-deploy.sh" in run
    assert "--check" in run


def test_wheel_artifact_is_what_deploys_download():
    build = _workflow("build.yml")
    steps = build["jobs"]["wheel"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["name"] == "${{ steps.version.outputs.artifact }}"
    assert any("scripts/ci-version.sh" in s.get("run", "") for s in steps)
    download = next(
        s
        for s in _load(ACTIONS / "deploy" / "action.yml")["runs"]["steps"]
        if s.get("uses", "").startswith("actions/download-artifact@")
    )
    assert download["with"]["name"] == "${{ inputs.artifact }}"


def test_build_versions_by_branch():
    kinds = {
        name: {job["with"]["kind"] for job in wf["jobs"].values() if job.get("uses") == BUILD_WORKFLOW}
        for name, wf in _all_workflows().items()
    }
    assert kinds["main.yml"] == {"sha"}
    assert kinds["release.yml"] == {"release"}
    assert kinds["checks.yml"] == {"sha"}


def _scenarios_job_output() -> list[str]:
    """Run the scenarios job's script here, with a stand-in for GITHUB_OUTPUT."""
    script = _workflow("checks.yml")["jobs"]["scenarios"]["steps"][-1]["run"]
    with tempfile.NamedTemporaryFile("r", suffix=".out") as output:
        subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env={**os.environ, "GITHUB_OUTPUT": output.name},
            check=True,
            timeout=60,
        )
        key, _, value = output.read().strip().partition("=")
    assert key == "list"
    return json.loads(value)


def test_molecule_matrix_is_every_scenario_in_the_makefiles_order():
    jobs = _workflow("checks.yml")["jobs"]
    assert (
        jobs["molecule"]["strategy"]["matrix"]["scenario"] == "${{ fromJSON(needs.scenarios.outputs.list) }}"
    )
    makefile = (ROOT / "Makefile").read_text()
    order = re.search(r"^SCENARIO_ORDER := (.+)$", makefile, re.MULTILINE).group(1).split()
    existing = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
    expected = [s for s in order if s in existing] + [s for s in existing if s not in order]
    assert _scenarios_job_output() == expected


def test_pull_requests_run_the_checks():
    jobs = _workflow("pull-request.yml")["jobs"]
    assert [job["uses"] for job in jobs.values()] == ["./.github/workflows/checks.yml"]
    checks = _workflow("checks.yml")["jobs"]
    runs = " ".join(step.get("run", "") for job in checks.values() for step in job.get("steps", []))
    for command in ("make -o setup lint", "make -o setup unit", "scripts/molecule-all.sh"):
        assert command in runs


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yml")))
def test_least_privilege(name):
    workflow = _workflow(name)
    assert workflow.get("permissions") == {"contents": "read"}, f"{name}: default token must be read-only"
    for job_id, job in workflow["jobs"].items():
        for scope, level in (job.get("permissions") or {}).items():
            if level == "write":
                assert (name, job_id) in {
                    ("release.yml", "tag"),
                    ("release.yml", "cherry-pick"),
                }, f"{name}:{job_id} writes {scope}"


def _yaml_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(ACTIONS.glob("*/action.yml"))


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_secret_literals(path):
    text = path.read_text()
    assert set(re.findall(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)", text)) <= DEPLOY_SECRETS | OTHER_SECRETS
    assert "-----BEGIN" not in text
    secret_key = re.compile(r"password|private-key|token|known-hosts", re.IGNORECASE)
    for key, value in _walk(_load(path)):
        if isinstance(key, str) and secret_key.search(key) and isinstance(value, str):
            assert "${{" in value or value == "", f"{path.name}: {key} holds a literal"


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_local_references_exist(path):
    for key, value in _walk(_load(path)):
        if key == "uses" and isinstance(value, str) and value.startswith("./"):
            target = ROOT / value
            assert target.is_file() or (target / "action.yml").is_file(), f"{path.name}: {value}"


def test_deploy_jobs_inherit_secrets_and_may_read_artifacts():
    for name, workflow in _started_workflows().items():
        for job_id, job in _deploy_jobs(workflow).items():
            assert job.get("secrets") == "inherit", f"{name}:{job_id}"
            assert job["permissions"] == {"contents": "read", "actions": "read"}, f"{name}:{job_id}"
