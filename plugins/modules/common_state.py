#!/usr/bin/python
# Copyright: lookout maintainers
# MIT License
import grp
import hashlib
import os
import platform
import pwd
import socket
import stat
import sys

from ansible.module_utils.basic import AnsibleModule

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
options:
  paths:
    description: Absolute paths to report on.
    type: list
    elements: path
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

ARGUMENT_SPEC = {
    "paths": {"type": "list", "elements": "path", "default": []},
    "packages": {"type": "list", "elements": "str", "default": []},
    "users": {"type": "list", "elements": "str", "default": []},
    "services": {"type": "list", "elements": "str", "default": []},
    "names": {"type": "list", "elements": "str", "default": []},
}


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def path_state(path):
    """What is at `path`: its type, mode, owner and group, and a file's SHA-1."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {"type": "absent"}
    kinds = ((stat.S_ISLNK, "link"), (stat.S_ISDIR, "directory"), (stat.S_ISREG, "file"))
    kind = next((name for test, name in kinds if test(st.st_mode)), "other")
    found = {
        "type": kind,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "owner": _name(pwd.getpwuid, st.st_uid),
        "group": _name(grp.getgrgid, st.st_gid),
    }
    if kind == "link":
        found["target"] = os.path.realpath(path)
    if kind == "file":
        digest = hashlib.sha1()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        found["sha1"] = digest.hexdigest()
    return found


def user_state(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {"group": _name(grp.getgrgid, entry.pw_gid), "home": entry.pw_dir, "shell": entry.pw_shell}


def packages_state(module, names):
    """dpkg's status word of each package (one dpkg-query for all); `unknown` for one dpkg does not know."""
    found = {name: "unknown" for name in names}
    if not names:
        return found
    dpkg = module.get_bin_path("dpkg-query")
    if not dpkg:
        return found
    # rc 1 when some package is unknown: the others are still listed.
    _, out, _ = module.run_command([dpkg, "--show", "--showformat=${Package} ${db:Status-Status}\\n", *names])
    for line in out.splitlines():
        package, _, status = line.partition(" ")
        if package in found and status:
            found[package] = status
    return found


def services_state(module, names):
    """systemd's view of each unit (one systemctl call for all); `unknown` where it gives none."""
    unknown = {"enabled": "unknown", "active": "unknown", "reload": True}
    found = {name: dict(unknown) for name in names}
    systemctl = module.get_bin_path("systemctl")
    if not names or not systemctl:
        return found
    units = [name if "." in name else name + ".service" for name in names]
    rc, out, _ = module.run_command(
        [
            systemctl,
            "show",
            "--property=Id,LoadState,UnitFileState,ActiveState,NeedDaemonReload",
            "--",
            *units,
        ]
    )
    if rc != 0:
        return found
    # One block per unit, in the order asked, separated by an empty line; a block whose Id is not the unit
    # asked for (an alias) is not taken.
    blocks = [
        dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for block in out.split("\n\n")
    ]
    for name, unit, block in zip(names, units, [b for b in blocks if b], strict=False):
        if block.get("Id") == unit and block.get("LoadState") in ("loaded", "masked"):
            found[name] = {
                "enabled": block.get("UnitFileState") or "unknown",
                "active": block.get("ActiveState") or "unknown",
                "reload": block.get("NeedDaemonReload") != "no",
            }
    return found


def addresses(name):
    """The name's addresses as the host's resolver gives them (TCP), IPv4 first; [] if it does not resolve."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)}
    except (socket.gaierror, UnicodeError):
        return []
    return sorted(found, key=lambda address: (":" in address, address))


def platform_state():
    libc, version = platform.libc_ver()
    return {
        "executable": sys.executable,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "machine": platform.machine(),
        "glibc": version if libc == "glibc" else "",
    }


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    host = {
        "files": {path: path_state(path) for path in params["paths"]},
        "packages": packages_state(module, params["packages"]),
        "users": {name: user_state(name) for name in params["users"]},
        "services": services_state(module, params["services"]),
        "addresses": {name: addresses(name) for name in params["names"]},
        "platform": platform_state(),
    }
    module.exit_json(changed=False, host=host)


if __name__ == "__main__":
    main()
