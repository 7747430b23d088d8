"""ansible.builtin.template's lookup, without the deep copy of every variable it makes per call.

The builtin lookup renders a file with a deep copy of the task's variables (ansible-core 2.19: `vars =
deepcopy(variables)`, which its own FIXME questions), so that what it adds (template_path, ansible_managed,
template_vars) stays out of the caller's. With lookout's inventories that copy costs more than the
rendering: every role renders its units and configuration files on the controller to compare them with the
host's report. This lookup hands the builtin its variables in a mapping whose deep copy is a copy of the top
level only: the additions still land in a copy, and the values are shared. They stay as they were: a
template that changes one (`{% set _ = x.update(...) %}`) changes the copy Ansible's templating makes of it
when the template reads it (tests/test_template_lookup.py). Everything else is the builtin's own code.
"""

from __future__ import annotations

from ansible.plugins.lookup.template import LookupModule as BuiltinTemplateLookup

DOCUMENTATION = r"""
name: template
author: lookout
short_description: ansible.builtin.template's lookup, without its deep copy of every variable
description:
  - Renders each file as C(ansible.builtin.template)'s lookup does, with the same options and search path.
  - The variables the template sees are the task's, copied at the top level only, where the builtin copies
    every value deeply on each call.
options:
  _terms:
    description: The template files, found as the builtin lookup finds them (the role's templates/ first).
  template_vars:
    type: dict
    default: {}
    description: Variables added for this rendering only, as ansible.builtin.template's lookup.
  variable_start_string:
    type: str
    default: "{{"
    description: As ansible.builtin.template's lookup.
  variable_end_string:
    type: str
    default: "}}"
    description: As ansible.builtin.template's lookup.
  comment_start_string:
    type: str
    default: "{#"
    description: As ansible.builtin.template's lookup.
  comment_end_string:
    type: str
    default: "#}"
    description: As ansible.builtin.template's lookup.
  trim_blocks:
    type: bool
    default: true
    description: As ansible.builtin.template's lookup.
"""

EXAMPLES = r"""
- name: Compare a rendered unit with what the host has
  ansible.builtin.set_fact:
    unit_content: "{{ lookup('lookout.stack.template', 'service.j2') }}"
"""

RETURN = r"""
_raw:
  description: Each file rendered, as ansible.builtin.template's lookup returns it.
  type: list
  elements: raw
"""


class _TopLevelCopy(dict):
    """The task's variables; a deep copy of this mapping copies the top level and shares the values."""

    def __deepcopy__(self, memo):
        return dict(self)


class LookupModule(BuiltinTemplateLookup):
    def run(self, terms, variables=None, **kwargs):
        return super().run(terms, _TopLevelCopy(variables or {}), **kwargs)
