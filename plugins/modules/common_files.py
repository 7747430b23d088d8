#!/usr/bin/python
# Copyright: lookout maintainers
# MIT License
import grp
import hashlib
import os
import pwd
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: common_files
short_description: Write several files in one call, each checked before it replaces the live one
description:
  - Compares each file's content, owner, group and mode with what is on the host and changes only what
    differs, so a converged host costs one module call for all of a service's files.
  - In the order given, a file whose content changes is first written next to the live one, checked with
    its C(validate) command, and only then moved into place (atomically), so a later file's check sees
    the earlier files (e.g. a configuration naming a rules file). A file that fails its check is never
    moved; the module stops there and fails with the checker's output (C(replaced) lists the files of the
    batch already in place).
  - An entry may also be a directory (C(state=directory), created with its parents, owner, group and
    mode) or a path that must not exist (C(state=absent), a file or symbolic link removed). Entries are
    handled in the order given, so a directory comes before the files in it, and a file no longer in use
    is removed after the configuration that stopped naming it has replaced the live one.
  - A file with C(force=false) is written only when nothing is at its path; once there, its content is
    kept whatever C(content) says (a key generated once), and only its owner, group and mode are put right.
  - Supports check mode (nothing is written or checked) and diff mode (except for C(secret) files).
options:
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file; its directory must exist (or come earlier in the list).
        type: path
        required: true
      state:
        description: C(file) (written with C(content)), C(directory) or C(absent).
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description: The file's content; required for C(state=file), not allowed otherwise.
        type: str
      owner:
        description: Owner.
        type: str
        default: root
      group:
        description: Group.
        type: str
        default: root
      mode:
        description: Octal mode as a string, e.g. C("0640"); a directory's default is C("0755").
        type: str
      validate:
        description: Command checking the new content before it is used; C(%s) is the candidate file.
        type: str
        default: ""
      secret:
        description: Never show the content in a diff.
        type: bool
        default: false
      force:
        description:
          - C(false) writes the content only when the file does not exist yet, and keeps the content of an
            existing one (owner, group and mode are still enforced); for C(state=file) only.
        type: bool
        default: true
"""

RETURN = r"""
changed_paths:
  description: Paths created, removed, or whose content or attributes changed (or would, in check mode).
  type: list
  elements: str
  returned: always
checksums:
  description:
    - The SHA-1 of each file's content, in the order of C(files) (what C(copy) and C(template) return as
      C(checksum)), also in check mode; an empty string for a directory or an absent path. For a file
      with C(force=false) that exists, the SHA-1 of the content it keeps.
  type: list
  elements: str
  returned: always
"""

ARGUMENT_SPEC = {
    "files": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "default": "file", "choices": ["file", "directory", "absent"]},
            "content": {"type": "str"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "str"},
            "validate": {"type": "str", "default": ""},
            "secret": {"type": "bool", "default": False},
            "force": {"type": "bool", "default": True},
        },
    }
}


def _ids(module, spec):
    try:
        return pwd.getpwnam(spec["owner"]).pw_uid, grp.getgrnam(spec["group"]).gr_gid
    except KeyError as error:
        if not module.check_mode:
            module.fail_json(msg=f"{spec['path']}: unknown owner or group: {error}")
    # In check mode the user or group may come from an earlier task of the same run.
    return None, None


def _entry_error(spec):
    """Why an entry cannot be handled, or None."""
    if spec["state"] == "file" and spec["content"] is None:
        return f"{spec['path']}: content is required for a file"
    if spec["state"] != "file" and spec["content"] is not None:
        return f"{spec['path']}: content is only for state=file, not state={spec['state']}"
    if spec["state"] == "absent" and spec["validate"]:
        return f"{spec['path']}: validate is not for state=absent"
    if spec["state"] != "file" and not spec["force"]:
        return f"{spec['path']}: force=false is only for state=file, not state={spec['state']}"
    return None


def _plan_absent(spec):
    path = spec["path"]
    if os.path.isdir(path) and not os.path.islink(path):
        return {"msg": f"{path}: state=absent removes files and links, and this is a directory"}
    if os.path.lexists(path):
        return spec, None, None, None, None, True, None
    return None


def _plan_directory(module, spec):
    mode = int(spec["mode"] or "0755", 8)
    uid, gid = _ids(module, spec)
    path = spec["path"]
    if os.path.lexists(path) and not os.path.isdir(path):
        return {"msg": f"{path}: should be a directory, and something else is there"}
    if not os.path.isdir(path):
        return spec, None, mode, uid, gid, True, None
    st = os.stat(path)
    if uid is None or (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (mode, uid, gid):
        return spec, None, mode, uid, gid, False, None
    return None


def _plan(module, spec):
    """What must change for one entry: None, or (spec, new bytes, mode, uid, gid, content changed, old)."""
    error = _entry_error(spec)
    if error:
        module.fail_json(msg=error)
    if spec["state"] == "absent":
        plan = _plan_absent(spec)
    elif spec["state"] == "directory":
        plan = _plan_directory(module, spec)
    else:
        plan = _plan_file(module, spec)
    if isinstance(plan, dict):
        module.fail_json(**plan)
    return plan


def _plan_file(module, spec):
    new = spec["content"].encode()
    mode = int(spec["mode"] or "0644", 8)
    uid, gid = _ids(module, spec)
    old = _read(spec["path"])
    if old is not None and not spec["force"]:
        new = old
    if old != new:
        return spec, new, mode, uid, gid, True, old
    st = os.stat(spec["path"])
    if uid is None or (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (mode, uid, gid):
        return spec, new, mode, uid, gid, False, old
    return None


def _read(path):
    """The file's content, or None when there is none."""
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def _checksum(spec):
    """The SHA-1 of the content the file has after this call (a kept file's own); "" for other states."""
    if spec["state"] != "file":
        return ""
    kept = None if spec["force"] else _read(spec["path"])
    return hashlib.sha1(spec["content"].encode() if kept is None else kept).hexdigest()


def _diff(spec, old):
    hidden = "(secret content not shown)\n"
    if spec["state"] != "file":
        before, after = (
            ("present\n", "absent\n") if spec["state"] == "absent" else ("absent\n", "directory\n")
        )
        return {"before_header": spec["path"], "after_header": spec["path"], "before": before, "after": after}
    return {
        "before_header": spec["path"],
        "after_header": spec["path"],
        "before": hidden if spec["secret"] else (old or b"").decode(errors="replace"),
        "after": hidden if spec["secret"] else spec["content"],
    }


def _candidate(spec, new, mode, uid, gid):
    """Writes the new content next to the live file; returns the candidate file's path."""
    descriptor, candidate = tempfile.mkstemp(
        dir=os.path.dirname(spec["path"]), prefix="." + os.path.basename(spec["path"])
    )
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(new)
        handle.flush()
        os.fsync(handle.fileno())
    os.chown(candidate, uid, gid)
    os.chmod(candidate, mode)
    return candidate


def _check(module, spec, candidate):
    if not spec["validate"]:
        return None
    if "%s" not in spec["validate"]:
        return {"msg": f"{spec['path']}: validate must contain %s"}
    rc, out, err = module.run_command(spec["validate"].replace("%s", shlex.quote(candidate)))
    if rc != 0:
        return {"msg": f"failed to validate {spec['path']}", "rc": rc, "stdout": out, "stderr": err}
    return None


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    plans = [p for p in (_plan(module, spec) for spec in module.params["files"]) if p]
    result = {
        "changed": bool(plans),
        "changed_paths": [p[0]["path"] for p in plans],
        "checksums": [_checksum(spec) for spec in module.params["files"]],
    }
    if module._diff:
        result["diff"] = [_diff(p[0], p[6]) for p in plans if p[5]]
    if module.check_mode or not plans:
        module.exit_json(**result)

    replaced = []
    for spec, new, mode, uid, gid, content_changed, _ in plans:
        if spec["state"] == "absent":
            os.unlink(spec["path"])
            continue
        if spec["state"] == "directory" and content_changed:
            os.makedirs(spec["path"], exist_ok=True)
        if not content_changed or spec["state"] == "directory":
            os.chown(spec["path"], uid, gid)
            os.chmod(spec["path"], mode)
            continue
        candidate = _candidate(spec, new, mode, uid, gid)
        try:
            failure = _check(module, spec, candidate)
            if failure:
                module.fail_json(path=spec["path"], replaced=replaced, **failure)
            os.replace(candidate, spec["path"])
            replaced.append(spec["path"])
        finally:
            if os.path.exists(candidate):
                os.unlink(candidate)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
