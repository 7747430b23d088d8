"""The Slack messages read well: what, where, since when, runbook, and resolution, rendered by amtool."""

import json

import pytest
from alertmanager_helpers import amtool

FIRING = {
    "status": "firing",
    "labels": {
        "alertname": "WebsiteDown",
        "severity": "critical",
        "env": "production",
        "instance": "web1:8000",
        "job": "blackbox",
    },
    "annotations": {
        "summary": "web1:8000 does not answer",
        "description": "The /health probe has failed for 1m.",
        "runbook_url": "https://runbooks.example.org/WebsiteDown",
    },
    "startsAt": "2026-11-28T10:00:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
}
RESOLVED = {
    **FIRING,
    "status": "resolved",
    "labels": {**FIRING["labels"], "instance": "web2:8000"},
    "startsAt": "2026-11-28T09:00:00Z",
    "endsAt": "2026-11-28T09:05:30Z",
}
BARE_WARNING = {
    "status": "firing",
    "labels": {"alertname": "NodeDiskSpaceLow", "severity": "warning", "env": "testing"},
    "annotations": {},
    "startsAt": "2026-11-28T11:30:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
}


def notification(*alerts: dict) -> dict:
    common = {
        key: value
        for key, value in alerts[0]["labels"].items()
        if all(a["labels"].get(key) == value for a in alerts)
    }
    return {
        "receiver": f"slack-{common.get('severity', 'warning')}",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": common.get("alertname", "")},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://monitor1:9093",
    }


@pytest.fixture
def render(rendered, tmp_path):
    glob = rendered["production"].template_glob

    def _render(name: str, data: dict) -> str:
        data_file = tmp_path / "data.json"
        data_file.write_text(json.dumps(data))
        result = amtool(
            "template",
            "render",
            f"--template.glob={glob}",
            f"--template.data={data_file}",
            f'--template.text={{{{ template "lookout.slack.{name}" . }}}}',
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    return _render


def test_a_firing_alert_says_what_where_since_when_and_what_to_do(render):
    text = render("text", notification(FIRING))
    assert "*WebsiteDown* is firing" in text
    assert "*What:* web1:8000 does not answer" in text
    assert "The /health probe has failed for 1m." in text
    assert "*Where:* web1:8000 (production), job blackbox" in text
    assert "*Severity:* critical" in text
    assert "*Since:* 2026-11-28 10:00:00 UTC" in text
    assert "*Runbook:* https://runbooks.example.org/WebsiteDown" in text
    assert "Resolved" not in text


def test_a_resolved_alert_says_when_it_ended(render):
    text = render("text", notification(RESOLVED))
    assert "*WebsiteDown* is resolved" in text
    assert "*Where:* web2:8000 (production)" in text
    assert "*Since:* 2026-11-28 09:00:00 UTC" in text
    assert "*Resolved:* 2026-11-28 09:05:30 UTC" in text


def test_a_group_lists_every_alert_separately(render):
    text = render("text", notification(FIRING, RESOLVED))
    first, second = text.split("\n\n")
    assert "web1:8000" in first and "is firing" in first
    assert "web2:8000" in second and "is resolved" in second


def test_missing_annotations_still_read_well(render):
    text = render("text", notification(BARE_WARNING))
    assert "*What:* NodeDiskSpaceLow" in text
    assert "*Where:* unknown instance (testing)" in text
    assert "*Runbook:* none linked" in text
    assert "<no value>" not in text


@pytest.mark.parametrize(
    ("alerts", "title", "color"),
    [
        ((FIRING,), "[FIRING:1] WebsiteDown in production (critical)", "danger"),
        ((FIRING, RESOLVED), "[FIRING:1] WebsiteDown in production (critical)", "danger"),
        ((RESOLVED,), "[RESOLVED] WebsiteDown in production (critical)", "good"),
        ((BARE_WARNING,), "[FIRING:1] NodeDiskSpaceLow in testing (warning)", "warning"),
    ],
    ids=["firing", "partly-resolved", "resolved", "warning"],
)
def test_title_and_color(render, alerts, title, color):
    assert render("title", notification(*alerts)) == title
    assert render("color", notification(*alerts)) == color
