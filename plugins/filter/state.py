# Copyright: lookout maintainers
# MIT License
"""Whether the host already has what one of common's entries would make, decided on the controller.

`host` is what `lookout.stack.common_state` reported for the host (common's state entry keeps it as the
fact `__common_host`; roles/common/README.md, "State"). Each filter answers True only when the report
covers everything asked and all of it matches; anything not reported (a path, package, user or unit the
role did not ask about) answers False, and the entry makes its remote call as it would without a report.

- `files_in_place(files, host)`: common_files entries (path, state, content, owner, group, mode, force),
  compared as the module compares them: a file's SHA-1 (any content when force=false), mode (0644 for a
  file, 0755 for a directory when none is given), owner and group (root); a directory's mode, owner and
  group; an absent path's absence. An entry with `src` (a file on the controller, as `copy` takes it)
  instead of `content` is compared by that file's SHA-1.
- `user_in_place(host, user, group, home, shell)`: the user exists with that primary group, home and shell.
- `packages_in_place(host, names)`: dpkg says `installed` for each.
- `packages_reported(host, names)`: the report has dpkg's word for each (installed or not): no need to ask
  dpkg again.
- `service_in_place(host, name)`: the unit is enabled and active, and systemd need not reload its file.
- `service_masked(host, name)`: the unit is masked.
- `service_started(result)`: common's service entry (its registered systemd_service result) started the
  unit: it changed something and the unit was not active before (only enabling a running unit is no start).
- `state_forget(host, paths)`: the report without those paths (files the run has just changed); with
  `paths` true instead of a list, an empty report (a package install may change anything).
- `state_covers(host, read)`: the report answers every question of a state read (`read`: the module's
  `paths`, `packages`, `users`, `services` and `names`) and has its `platform`: a read ahead of the role
  (playbooks/preflight.yml) that nothing since has made stale stands for the role's own.
- `state_union(reads)`: one read asking every question of the reads given (each option's lists joined in
  order, without repeats): the read ahead of a host's roles.
"""

import hashlib

from ansible.errors import AnsibleFilterError

DEFAULT_MODES = {"file": 0o644, "directory": 0o755}
# common_state's options, each with the part of the report that answers it.
_OPTIONS = {
    "paths": "files",
    "packages": "packages",
    "users": "users",
    "services": "services",
    "names": "addresses",
}


def _report(host, part):
    if not isinstance(host, dict):
        raise AnsibleFilterError(
            f"the host's state is a dict (common_state's report), got {type(host).__name__}"
        )
    return host.get(part) or {}


def _attributes_match(entry, found, state):
    mode = entry.get("mode")
    wanted = int(str(mode), 8) if mode not in (None, "") else DEFAULT_MODES[state]
    owners = (entry.get("owner") or "root", entry.get("group") or "root")
    return int(found.get("mode", "-1"), 8) == wanted and (found.get("owner"), found.get("group")) == owners


def _entry_in_place(entry, found):
    state = entry.get("state") or "file"
    if found is None:
        return False
    if state == "absent":
        return found.get("type") == "absent"
    if found.get("type") != state or not _attributes_match(entry, found, state):
        return False
    if state == "file" and entry.get("force", True) is not False:
        return _sha1(entry) == found.get("sha1")
    return True


def _sha1(entry):
    """The SHA-1 of an entry's `content`, or of its `src`, a file on the controller (a copied binary)."""
    if entry.get("content") is not None:
        return hashlib.sha1(str(entry["content"]).encode()).hexdigest()
    if not entry.get("src"):
        return None
    digest = hashlib.sha1()
    try:
        with open(entry["src"], "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def files_in_place(files, host):
    """True when every entry of `files` is on the host as it would be written (see the module's text)."""
    report = _report(host, "files")
    return bool(files) and all(_entry_in_place(entry, report.get(entry.get("path"))) for entry in files)


def user_in_place(host, user, group, home, shell="/usr/sbin/nologin"):
    found = _report(host, "users").get(user)
    return found is not None and found == {"group": group, "home": home, "shell": shell}


def packages_in_place(host, names):
    report = _report(host, "packages")
    return bool(names) and all(report.get(name) == "installed" for name in names)


def packages_reported(host, names):
    report = _report(host, "packages")
    return bool(names) and all(name in report for name in names)


def service_in_place(host, name):
    found = _report(host, "services").get(name) or {}
    return (
        found.get("enabled") == "enabled" and found.get("active") == "active" and found.get("reload") is False
    )


def service_masked(host, name):
    return (_report(host, "services").get(name) or {}).get("enabled") == "masked"


def service_started(result):
    if not isinstance(result, dict) or not result.get("changed"):
        return False
    # Without systemd's word on the state before (no `status`), it is no start: the handlers restart as usual.
    before = (result.get("status") or {}).get("ActiveState")
    return before is not None and before not in ("active", "reloading", "activating")


def state_forget(host, paths):
    if paths is True or not isinstance(host, dict):
        return {}
    files = {path: found for path, found in (host.get("files") or {}).items() if path not in set(paths or [])}
    return {**host, "files": files}


def state_covers(host, read):
    if not isinstance(read, dict):
        raise AnsibleFilterError(
            f"state_covers: the read is a dict (common_state's options), got {type(read).__name__}"
        )
    return bool(_report(host, "platform")) and all(
        name in _report(host, part) for option, part in _OPTIONS.items() for name in read.get(option) or []
    )


def state_union(reads):
    union = {option: [] for option in _OPTIONS}
    for read in reads:
        if not isinstance(read, dict):
            raise AnsibleFilterError(
                f"state_union: each read is a dict (common_state's options), got {read!r}"
            )
        for option in _OPTIONS:
            union[option] += [name for name in read.get(option) or [] if name not in union[option]]
    return union


class FilterModule:
    def filters(self):
        return {
            "files_in_place": files_in_place,
            "user_in_place": user_in_place,
            "packages_in_place": packages_in_place,
            "packages_reported": packages_reported,
            "service_in_place": service_in_place,
            "service_masked": service_masked,
            "service_started": service_started,
            "state_forget": state_forget,
            "state_covers": state_covers,
            "state_union": state_union,
        }
