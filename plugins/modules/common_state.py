#!/usr/bin/python
# Copyright: lookout maintainers
# MIT License
from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lookout.stack.plugins.module_utils.common_state import ARGUMENT_SPEC, read, refused

DOCUMENTATION = r"""
module: common_state
short_description: Read what a host has of one service in one call, changing nothing
description:
  - Reports, for the paths, packages, users and systemd units it is given, what the host has now. Each
    path's type, mode, owner and group, a file's SHA-1 and a link's target; each package's dpkg status;
    each user's primary group, home and shell; each unit's enabled state, active state and whether
    systemd must reload its file.
  - Common's entries (files, unit, user, install_package, service) compare what they are asked to make with
    this report on the controller and skip their own remote call when the host has it already, so an
    unchanged host costs one call per role instead of one per step (roles/common/README.md, "State").
  - Never changes anything; runs the same in check mode. A unit systemd cannot answer for (no systemd, no
    such unit) is reported as C(unknown), which no entry takes as in place.
  - Its action (plugins/action/common_state.py) checks the arguments on the controller, then pipes the read's
    code (plugins/module_utils/common_state.py, standard library only) to the host's Python as a plain script
    wherever Ansible would pipe a module, without Ansible's module wrapper; elsewhere (pipelining off, the
    host's Python still to discover, async) this module runs as any module does. Both report the same.
options:
  paths:
    description: Absolute paths to report on (a relative one is refused, naming it).
    type: list
    elements: str
    default: []
  packages:
    description: Debian package names to ask dpkg about.
    type: list
    elements: str
    default: []
  users:
    description: User names to look up.
    type: list
    elements: str
    default: []
  services:
    description: systemd unit names (C(.service) implied when no suffix is given).
    type: list
    elements: str
    default: []
  names:
    description: Host names and addresses to resolve as the host's resolver does (TCP, every family).
    type: list
    elements: str
    default: []
"""

RETURN = r"""
host:
  description:
    - C(files) maps each path to C(type) (C(file), C(directory), C(link), C(other) or C(absent)) and, unless
      absent, C(mode) (e.g. C("0640")), C(owner) and C(group) (names; the number when it has none), and for
      a file C(sha1); for a link, C(target), the path it resolves to (what C(stat) returns as
      C(lnk_source)).
    - C(packages) maps each package to dpkg's status word (C(installed) when installed; C(unknown) when dpkg
      does not know it).
    - C(users) maps each user to C(group), C(home) and C(shell), or to null when there is no such user.
    - C(services) maps each unit as given to C(enabled) (systemd's UnitFileState, e.g. C(enabled),
      C(masked)), C(active) (ActiveState) and C(reload) (true when systemd must reload the unit's file).
    - C(addresses) maps each name to its addresses (IPv4 first, each family sorted; empty when it does not
      resolve).
    - C(platform) is the Python that ran this read (C(executable), C(python) as major.minor), the machine
      (C(machine), e.g. x86_64) and the C library's glibc version (C(glibc), empty for another C library).
  type: dict
  returned: always
"""


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    problem = refused(module.params)
    if problem:
        module.fail_json(msg=problem)
    module.exit_json(changed=False, host=read(module.params))


if __name__ == "__main__":
    main()
