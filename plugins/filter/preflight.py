# Copyright: lookout maintainers
# MIT License
"""Values checked by kind for a caller's preflight (tasks/preflight.yml), all of them in one call.

`preflight_failures` takes the caller's `common_preflight_checks` and the kinds table
(`__common_preflight_kinds`) and returns one entry per check that fails, in the callers' order:
`{name, rule, bad}`, `bad` being the values as strings. Checked here rather than in a looped assert
because ansible-core 2.19 compiles a loop item's templates anew for every item, which made the loop most
of playbooks/preflight.yml's time.

A value is one value or a list of them; each is compared as a string (Jinja's `string`), first with the
check's `allow` (values accepted as they are, such as "" or "*"), then matched from its start (Ansible's
`match` test) against the check's `pattern`, or its kind's.
"""

import re
from collections.abc import Iterable, Mapping

from ansible.errors import AnsibleFilterError


def _as_list(value):
    """One value or a list of them as a list (a string or a mapping is one value)."""
    if isinstance(value, Iterable) and not isinstance(value, (str, Mapping)):
        return list(value)
    return [value]


def _pattern_and_rule(check, kinds):
    """The check's own pattern and rule, or its kind's."""
    if "pattern" in check and "rule" in check:
        return str(check["pattern"]), str(check["rule"])
    kind = kinds.get(check.get("kind"))
    if kind is None:
        raise AnsibleFilterError(
            f"preflight_failures: {check.get('name')}: the kind {check.get('kind')!r} is none of"
            f" {', '.join(kinds)}; give a kind, or a pattern with its rule"
        )
    return str(check.get("pattern", kind["pattern"])), str(check.get("rule", kind["rule"]))


def preflight_failures(checks, kinds):
    """`[{name, rule, bad}]`: each check with values that neither `allow` lists nor the pattern matches."""
    failures = []
    for check in checks:
        pattern, rule = _pattern_and_rule(check, kinds)
        allowed = {str(value) for value in check.get("allow") or []}
        matches = re.compile(pattern).match
        values = map(str, _as_list(check["value"]))
        bad = [value for value in values if value not in allowed and not matches(value)]
        if bad:
            failures.append({"name": check["name"], "rule": rule, "bad": bad})
    return failures


class FilterModule:
    def filters(self):
        return {"preflight_failures": preflight_failures}
