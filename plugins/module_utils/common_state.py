# Copyright: lookout maintainers
# MIT License
"""What a host has of one service, read without changing anything: the code behind lookout.stack.common_state.

It imports the standard library only, so that it runs two ways with the same result: inside the module
(plugins/modules/common_state.py, Ansible's own wrapper), and as a plain script piped to the host's Python by
the module's action plugin (plugins/action/common_state.py), which spares each call the wrapper's import of
Ansible's module code. `read` takes the module's parameters and returns the report; `main_standalone` is the
script's entry: parameters as JSON in, the report as JSON out.
"""

import grp
import hashlib
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys

ARGUMENT_SPEC = {
    "paths": {"type": "list", "elements": "str", "default": []},
    "packages": {"type": "list", "elements": "str", "default": []},
    "users": {"type": "list", "elements": "str", "default": []},
    "services": {"type": "list", "elements": "str", "default": []},
    "names": {"type": "list", "elements": "str", "default": []},
}

# The commands' output is parsed: read it in the C locale whatever the host's.
_C_LOCALE = {"LANG": "C", "LC_ALL": "C", "LC_MESSAGES": "C"}


def refused(params):
    """The first parameter this read cannot take, as a message naming it; None when all are fine."""
    for path in params.get("paths") or []:
        if not os.path.isabs(path):
            return f"paths: {path!r} is not an absolute path"
    return None


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def _run(argv):
    """(rc, stdout) of a command run in the C locale, stdin closed."""
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ, **_C_LOCALE},
        check=False,
    )
    return done.returncode, done.stdout


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


def packages_state(names):
    """dpkg's status word of each package (one dpkg-query for all); `unknown` for one dpkg does not know."""
    found = {name: "unknown" for name in names}
    dpkg = shutil.which("dpkg-query") if names else None
    if not dpkg:
        return found
    # rc 1 when some package is unknown: the others are still listed.
    _, out = _run([dpkg, "--show", "--showformat=${Package} ${db:Status-Status}\\n", *names])
    for line in out.splitlines():
        package, _, status = line.partition(" ")
        if package in found and status:
            found[package] = status
    return found


def services_state(names):
    """systemd's view of each unit (one systemctl call for all); `unknown` where it gives none."""
    unknown = {"enabled": "unknown", "active": "unknown", "reload": True}
    found = {name: dict(unknown) for name in names}
    systemctl = shutil.which("systemctl") if names else None
    if not systemctl:
        return found
    units = [name if "." in name else name + ".service" for name in names]
    rc, out = _run(
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
    """The Python running this read, the machine and the glibc version (empty for another C library).

    glibc's version is what the C library itself answers (confstr), not a scan of the interpreter's binary.
    """
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""
    name, _, version = libc.partition(" ")
    return {
        "executable": sys.executable,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "machine": os.uname().machine,
        "glibc": version if name == "glibc" else "",
    }


def read(params):
    """The report for the module's parameters (each list may be missing or None: nothing asked)."""
    return {
        "files": {path: path_state(path) for path in params.get("paths") or []},
        "packages": packages_state(params.get("packages") or []),
        "users": {name: user_state(name) for name in params.get("users") or []},
        "services": services_state(params.get("services") or []),
        "addresses": {name: addresses(name) for name in params.get("names") or []},
        "platform": platform_state(),
    }


def main_standalone(params_json):
    """The script's entry: the report as one JSON line on stdout. Its caller, the action, has refused any
    argument `refused` names before sending the script."""
    sys.stdout.write(json.dumps({"changed": False, "host": read(json.loads(params_json))}) + "\n")
