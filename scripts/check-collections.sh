#!/usr/bin/env bash
# Offline dependency check: every collection requirements.yml names must already be installed
# (here they come from the PyPI `ansible` package; users may install them with ansible-galaxy).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
installed=$(ansible-galaxy collection list --format json 2>/dev/null)
python3 - "$here/requirements.yml" "$installed" <<'PY'
import json, sys
import yaml
from ansible.module_utils.compat.version import LooseVersion

wanted = yaml.safe_load(open(sys.argv[1]))["collections"]
have = {}
for path in json.loads(sys.argv[2]).values():
    for name, meta in path.items():
        have.setdefault(name, meta["version"])
missing = []
for c in wanted:
    name, minimum = c["name"], str(c.get("version", "*")).lstrip(">=")
    if name not in have:
        missing.append(f"{name} (not installed)")
    elif minimum != "*" and LooseVersion(have[name]) < LooseVersion(minimum):
        missing.append(f"{name} {have[name]} < {minimum}")
    else:
        print(f"collection {name} {have[name]} ok")
if missing:
    sys.exit("missing collections: " + ", ".join(missing) + " — run: ansible-galaxy collection install -r requirements.yml")
PY
