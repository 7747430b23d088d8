"""common's `preflight_failures` filter (plugins/filter/preflight.py), in Python: which of a
caller's values fail their kind, with the rule and the values the message shows; and the kinds table of
roles/common/vars/main.yml, one value each kind accepts and one it refuses. The messages themselves are
tried through ansible-playbook in tests/preflight."""

import re
import sys

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from controller_helpers import ROOT

sys.path.insert(0, str(ROOT / "plugins" / "filter"))
from preflight import preflight_failures as failures

KINDS = {
    "positive": {"pattern": r"^[1-9][0-9]*\Z", "rule": "a whole number above 0"},
    # Without ^: Ansible's `match` test anchors at the start itself.
    "word": {"pattern": "[a-z]+", "rule": "letters first"},
}


def test_values_that_fit_their_kind_give_no_failure():
    checks = [
        {"name": "workers", "value": 4, "kind": "positive"},
        {"name": "limits", "value": ["1", 20, 300], "kind": "positive"},
    ]
    assert failures(checks, KINDS) == []


def test_a_failure_names_the_variable_the_kinds_rule_and_the_value_as_a_string():
    checks = [{"name": "workers", "value": 0, "kind": "positive"}]
    assert failures(checks, KINDS) == [{"name": "workers", "rule": "a whole number above 0", "bad": ["0"]}]


def test_only_the_bad_members_of_a_list_are_shown_in_their_order():
    checks = [{"name": "limits", "value": ["x", 5, "0", True], "kind": "positive"}]
    assert failures(checks, KINDS)[0]["bad"] == ["x", "0", "True"]


def test_every_failing_check_is_returned_in_the_callers_order():
    checks = [
        {"name": "first", "value": "-1", "kind": "positive"},
        {"name": "fine", "value": "1", "kind": "positive"},
        {"name": "second", "value": "7", "kind": "word"},
    ]
    assert [failure["name"] for failure in failures(checks, KINDS)] == ["first", "second"]


def test_allowed_values_pass_as_they_are_compared_as_strings():
    checks = [
        {"name": "address", "value": "", "kind": "positive", "allow": [""]},
        {"name": "workers", "value": [0, "*"], "kind": "positive", "allow": ["0", "*"]},
        {"name": "sources", "value": ["0", "*"], "kind": "positive", "allow": [0]},
    ]
    assert failures(checks, KINDS) == [{"name": "sources", "rule": "a whole number above 0", "bad": ["*"]}]


def test_an_own_pattern_and_rule_replace_the_kinds():
    checks = [
        {"name": "time", "value": ["5s", "5"], "pattern": r"^[0-9]+s\Z", "rule": "seconds with their unit"},
        # A pattern alone keeps its kind's rule.
        {"name": "count", "value": "0", "kind": "positive", "pattern": r"^[0-9]+\Z"},
        {"name": "name", "value": "0", "kind": "word", "pattern": "^[0-9]"},
        # A rule alone keeps its kind's pattern.
        {"name": "hours", "value": ["1", "1h"], "kind": "positive", "rule": "whole hours, without a unit"},
    ]
    assert failures(checks, KINDS) == [
        {"name": "time", "rule": "seconds with their unit", "bad": ["5"]},
        {"name": "hours", "rule": "whole hours, without a unit", "bad": ["1h"]},
    ]


def test_a_pattern_is_matched_from_the_start_of_the_value_as_ansibles_match_test_does():
    checks = [{"name": "names", "value": ["abc1", "1abc"], "kind": "word"}]
    assert failures(checks, KINDS)[0]["bad"] == ["1abc"]


def test_a_mapping_or_a_string_is_one_value():
    checks = [
        {"name": "datasource", "value": {"url": "x"}, "kind": "positive"},
        {"name": "port", "value": "80 81", "kind": "positive"},
    ]
    assert [failure["bad"] for failure in failures(checks, KINDS)] == [["{'url': 'x'}"], ["80 81"]]


def test_a_check_without_a_known_kind_or_a_pattern_and_rule_is_an_error_naming_it():
    with pytest.raises(AnsibleFilterError, match="retention: the kind 'durations' is none of positive, word"):
        failures([{"name": "retention", "value": "30d", "kind": "durations"}], KINDS)
    with pytest.raises(AnsibleFilterError, match="timeout"):
        failures([{"name": "timeout", "value": "30d", "pattern": ".*"}], KINDS)


# --- the kinds table as roles/common/vars/main.yml writes it ---

# Per kind: a value it accepts and one it refuses.
EXAMPLES = {
    "duration": ("1h30m", "30s1m"),
    "go_duration": ("1.5s", "5d"),
    "size": ("20GiB", "20gb"),
    "port": ("65535", "65536"),
    "positive": ("1", "0"),
    "count": ("0", "-1"),
    "address": ("2001:db8::1", "[::1]"),
    "address_bracketed": ("[::1]", "::1"),
    "host_port": ("db1.example.org:5432", ":5432"),
    "listen_host_port": (":9093", "0.0.0.0"),
    "url": ("http://[::1]:9090/api", "monitor1:9090"),
    "source": ("10.0.0.0/8", "10.0.0.0/33"),
}


def _kinds_table() -> dict:
    """`__common_preflight_kinds` with the patterns' `{{ __common_* }}` parts filled in."""
    variables = yaml.safe_load((ROOT / "roles" / "common" / "vars" / "main.yml").read_text())
    reference = re.compile(r"\{\{ (__common_[a-z0-9_]+) \}\}")

    def resolve(text: str) -> str:
        while reference.search(text):
            text = reference.sub(lambda m: variables[m[1]], text)
        return text

    return {
        kind: {"pattern": resolve(entry["pattern"]), "rule": entry["rule"]}
        for kind, entry in variables["__common_preflight_kinds"].items()
    }


TABLE = _kinds_table()


def test_every_kind_has_examples():
    assert set(EXAMPLES) == set(TABLE)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_each_kind_accepts_its_example_and_refuses_the_other(kind):
    good, bad = EXAMPLES[kind]
    found = failures([{"name": "input", "value": [good, bad], "kind": kind}], TABLE)
    assert found == [{"name": "input", "rule": TABLE[kind]["rule"], "bad": [bad]}]
