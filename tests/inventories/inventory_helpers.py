"""Shared helpers for the inventory tests: paths, YAML loading, and throwaway test vaults.

The committed vault.yml files of development, testing and production are encrypted with passwords that
are not in the repository. To exercise those inventories anyway, `make_test_inventory` copies one into a
temporary directory and replaces its vault.yml with generated values for the same keys, encrypted with a
generated password. Run as a script it does the same for an operator (e.g. for `make render`):

    python tests/inventories/inventory_helpers.py production build/test-inventories/production
    # prints the inventory directory and the vault password file to pass to ansible-playbook
"""

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
INVENTORIES = ROOT / "inventories"
ENVS = ("demo", "development", "testing", "production")
# Environments whose secrets are vault-encrypted; demo's are plain, non-secret values.
VAULTED_ENVS = tuple(e for e in ENVS if e != "demo")
DEMO_SECRETS = INVENTORIES / "demo" / "group_vars" / "all" / "demo_secrets.yml"
ANSIBLE_VAULT = Path(sys.executable).with_name("ansible-vault")


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def secret_keys() -> list[str]:
    """The vault_* keys every environment defines; demo's plain file is the readable copy of the list."""
    return sorted(load_yaml(DEMO_SECRETS))


def is_vault_encrypted(path: Path) -> bool:
    return path.read_text().startswith("$ANSIBLE_VAULT;")


def readable_var_files(inventory: Path) -> list[Path]:
    """Every variable file of an inventory that can be read without a vault password."""
    files = [
        p
        for d in ("group_vars", "host_vars")
        for p in sorted((inventory / d).rglob("*"))
        if p.is_file() and p.suffix in (".yml", ".yaml", "") and not is_vault_encrypted(p)
    ]
    return files


def inventory_keys(inventory: Path) -> set[str]:
    """Every variable name an inventory sets: group_vars, host_vars and the vars inside hosts.yml."""
    keys: set[str] = set()
    for path in readable_var_files(inventory):
        keys |= set(load_yaml(path))
    keys |= _hosts_file_keys(load_yaml(inventory / "hosts.yml").get("all", {}))
    if any(is_vault_encrypted(p) for p in (inventory / "group_vars").rglob("*") if p.is_file()):
        keys |= set(secret_keys())
    return keys


def _hosts_file_keys(group: dict) -> set[str]:
    keys = set((group or {}).get("vars") or {})
    for host_vars in ((group or {}).get("hosts") or {}).values():
        keys |= set(host_vars or {})
    for child in ((group or {}).get("children") or {}).values():
        keys |= _hosts_file_keys(child)
    return keys


def make_test_inventory(env: str, dest: Path) -> tuple[Path, Path | None]:
    """Copy inventories/<env> to dest; for a vaulted env, swap in a generated test vault.

    Returns the inventory directory and the vault password file (None for demo).
    """
    inventory = dest / env
    shutil.copytree(INVENTORIES / env, inventory, symlinks=True)
    vault = inventory / "group_vars" / "all" / "vault.yml"
    if not vault.exists():
        return inventory, None
    password_file = dest / f"{env}.vault-password"
    password_file.write_text(secrets.token_urlsafe(32) + "\n")
    password_file.chmod(0o600)
    values = {key: f"test-{env}-{key}-{secrets.token_hex(8)}" for key in secret_keys()}
    values["vault_slack_webhook_url"] = f"http://127.0.0.1:9/services/test-{env}"
    # https: the alertmanager role refuses a plain-http heartbeat URL outside the demo's stand-in.
    values["vault_heartbeat_url"] = f"https://127.0.0.1:9/heartbeat/test-{env}"
    vault.write_text(yaml.safe_dump(values, sort_keys=True))
    subprocess.run(
        [str(ANSIBLE_VAULT), "encrypt", "--vault-id", f"{env}@{password_file}", str(vault)],
        check=True,
        capture_output=True,
        text=True,
    )
    return inventory, password_file


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ENVS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(ENVS)}}} DEST_DIR")
    target = Path(sys.argv[2]).resolve()
    if (target / sys.argv[1]).exists():
        shutil.rmtree(target / sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    inv, pw = make_test_inventory(sys.argv[1], target)
    print(f"inventory: {inv}")
    print(f"vault password file: {pw or '(none: demo secrets are plain)'}")
