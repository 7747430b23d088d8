#!/usr/bin/python
# Copyright: lookout maintainers
# MIT License
import grp
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
  - Supports check mode (nothing is written or checked) and diff mode (except for C(secret) files).
options:
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file; its directory must exist.
        type: path
        required: true
      content:
        description: The file's content.
        type: str
        required: true
      owner:
        description: Owner.
        type: str
        default: root
      group:
        description: Group.
        type: str
        default: root
      mode:
        description: Octal mode as a string, e.g. C("0640").
        type: str
        default: "0644"
      validate:
        description: Command checking the new content before it is used; C(%s) is the candidate file.
        type: str
        default: ""
      secret:
        description: Never show the content in a diff.
        type: bool
        default: false
"""

RETURN = r"""
changed_paths:
  description: Paths whose content or attributes changed (or would change in check mode).
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
            "content": {"type": "str", "required": True},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "str", "default": "0644"},
            "validate": {"type": "str", "default": ""},
            "secret": {"type": "bool", "default": False},
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


def _plan(module, spec):
    """What must change for one file: None, or (spec, new bytes, mode, uid, gid, content changed, old)."""
    new = spec["content"].encode()
    mode = int(spec["mode"], 8)
    uid, gid = _ids(module, spec)
    old = None
    if os.path.exists(spec["path"]):
        with open(spec["path"], "rb") as handle:
            old = handle.read()
    if old != new:
        return spec, new, mode, uid, gid, True, old
    st = os.stat(spec["path"])
    if uid is None or (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (mode, uid, gid):
        return spec, new, mode, uid, gid, False, old
    return None


def _diff(spec, old):
    hidden = "(secret content not shown)\n"
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
    result = {"changed": bool(plans), "changed_paths": [p[0]["path"] for p in plans]}
    if module._diff:
        result["diff"] = [_diff(p[0], p[6]) for p in plans if p[5]]
    if module.check_mode or not plans:
        module.exit_json(**result)

    replaced = []
    for spec, new, mode, uid, gid, content_changed, _ in plans:
        if not content_changed:
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
