"""Every role that serves TLS declares one TLS block; these tests hold it, so the hand-copied blocks cannot
drift (docs/conventions.md, "Role shape"; issue 18).

A TLS block is the inputs `<prefix>_tls_*` one certificate is made from. The blocks are found in the roles'
tasks: each call of common's `tls` entry names one (`common_tls_role: <prefix>`), and so does each direct call
of its `certificate` entry (`common_certificate_content_var: <prefix>_tls_certificate`). The suffixes of a
block are the ones common's `tls` entry reads (`__common_tls_input` in roles/common/vars/main.yml) and the
switch `enabled` each call of it is gated on. The shape of each suffix (its argument spec, bar the
description, and its value in defaults/main.yml) is the one most blocks that go through `tls` declare; a
block that differs fails, unless the difference is listed below with its reason.

- every role with `<role>_tls_enabled` goes through common's `tls` entry, and every call of that entry is
  gated on the block's `enabled`;
- each block declares every suffix (in argument_specs and defaults/main.yml), each with the common spec, the
  common default and the common description (the role's prefix aside);
- any other `_tls_` input of a role is a known extra, listed with its reason.
"""

from collections import Counter
from pathlib import Path

import pytest
import yaml
from role_helpers import ROLES, ROOT, common_calls, entries, load
from role_helpers import defaults as role_defaults
from role_helpers import inputs as role_inputs

SWITCH = "enabled"

# A block without the switch: its certificate is always made.
NO_SWITCH = {
    "haproxy": "HAProxy's public frontend always terminates HTTPS; its certificate goes through common's "
    "certificate entry directly (no loopback names added, no CA copy beside it), not through tls",
}

# A default that differs from the common one, by block and suffix.
DEFAULT_DIFFERS = {
    ("haproxy", "names"): "the public certificate: the first name is its common name, and the names clients "
    "use are the environment's public ones (group_vars/all/haproxy.yml), not the inventory address",
}

# Descriptions that say something of their own. `enabled` says what the role serves over TLS, in every role.
DESCRIPTION_PER_BLOCK = {SWITCH}
DESCRIPTION_DIFFERS = {
    ("conduit", "names"): "the resolved listen address is added too (common_tls_extra_names), so peers can "
    "dial it",
    ("haproxy", "names"): "the certificate entry adds no loopback names; the first name is the common name",
    ("haproxy", "ca_certificate"): "no CA copy is written beside the frontend's certificate, so a vaulted "
    "certificate need not come with the CA that signed it (the certificate entry's rule, not tls's)",
}

# Other `_tls_` inputs: known, each with its reason.
KNOWN_EXTRAS = {
    "alertmanager_cluster_tls_enabled": "gossip over mutual TLS with the certificate of alertmanager_tls_*: "
    "a switch, no certificate of its own",
    "grafana_tls_cert_file": "a certificate file already on the host, for grafana_protocol https without "
    "grafana_tls_enabled (Grafana's own setting, not a certificate lookout makes)",
    "grafana_tls_key_file": "the key of grafana_tls_cert_file",
    "haproxy_tls_min_version": "the public frontend's bind options, not its certificate",
    "haproxy_tls_ciphers": "the public frontend's bind options, not its certificate",
    "haproxy_tls_ciphersuites": "the public frontend's bind options, not its certificate",
    "haproxy_backend_tls_enabled": "HAProxy to the web hosts over TLS, verified against the CA beside the "
    "metrics certificate: a switch, no certificate of its own",
    "prometheus_tls_probe_job_name": "the blackbox probes of lookout's TLS listeners, not Prometheus's own",
    "prometheus_tls_probe_targets": "the blackbox probes of lookout's TLS listeners, not Prometheus's own",
    "prometheus_tls_probe_module": "the blackbox probes of lookout's TLS listeners, not Prometheus's own",
}


def _spec(role: Path) -> dict:
    return (entries(role).get("main") or {}).get("options") or {}


def _when(task: dict) -> str:
    when = task.get("when", "")
    return " and ".join(when) if isinstance(when, list) else str(when)


def _tls_prefixes(role: Path) -> set[str]:
    """The blocks that go through common's tls entry."""
    return {(task.get("vars") or {}).get("common_tls_role") for task in common_calls(role, "tls")}


def _certificate_prefixes(role: Path) -> set[str]:
    """The blocks that go through common's certificate entry directly."""
    found = set()
    for task in common_calls(role, "certificate", "certificate_check"):
        var = (task.get("vars") or {}).get("common_certificate_content_var", "")
        if var.endswith("_tls_certificate"):
            found.add(var.removesuffix("_tls_certificate"))
    return found


# The suffixes common's tls entry reads, and the switch its calls are gated on.
SUFFIXES = [*((load(ROOT / "roles/common/vars/main.yml") or {}).get("__common_tls_input") or {}), SWITCH]
SUFFIXES = [SWITCH, *(s for s in SUFFIXES if s != SWITCH)]
BLOCKS = sorted(
    (role, prefix, via)
    for role in ROLES
    for via, prefixes in (("tls", _tls_prefixes(role)), ("certificate", _certificate_prefixes(role)))
    for prefix in prefixes
)
TLS_BLOCKS = [(role, prefix) for role, prefix, via in BLOCKS if via == "tls"]


def _block_id(block) -> str:
    role, prefix = block[0], block[1]
    return role.name if prefix == role.name else f"{role.name}/{prefix}"


def _listing(lines: list[str]) -> str:
    return "".join(f"\n  {line}" for line in lines)


def _frozen(value) -> str:
    return yaml.safe_dump(value, sort_keys=True)


def _description(prefix: str, option: dict) -> str:
    text = option.get("description", "")
    text = " ".join(text) if isinstance(text, list) else str(text)
    return " ".join(text.replace(f"{prefix}_tls_", "<role>_tls_").split())


def _shape(prefix: str, role: Path, suffix: str) -> dict:
    """What a block declares for one suffix: the argument spec (bar the description), the default, the
    description (the role's prefix written as <role>)."""
    name, spec = f"{prefix}_tls_{suffix}", _spec(role)
    option = spec.get(name) or {}
    return {
        "spec": {k: v for k, v in option.items() if k != "description"} if name in spec else None,
        "default": role_defaults(role).get(name, "<missing>"),
        "description": _description(prefix, option),
    }


def _canonical() -> tuple[dict[str, dict], list[str]]:
    """For each suffix, the shape most blocks going through tls declare (a strict majority); and the parts
    where no majority agrees."""
    canonical, split = {}, []
    for suffix in SUFFIXES:
        shapes = [_shape(prefix, role, suffix) for role, prefix in TLS_BLOCKS]
        canonical[suffix] = {}
        for part in ("spec", "default", "description"):
            if part == "description" and suffix in DESCRIPTION_PER_BLOCK:
                continue
            counts = Counter(_frozen(s[part]) for s in shapes)
            value, count = counts.most_common(1)[0] if counts else (_frozen(None), 0)
            if count * 2 <= len(shapes):
                split.append(f"{part} of <role>_tls_{suffix}: {sorted(counts.values())}")
            canonical[suffix][part] = yaml.safe_load(value)
    return canonical, split


CANONICAL, SPLIT = _canonical()


def test_blocks_found():
    assert len(TLS_BLOCKS) > 2, f"too few roles call common's tls entry to tell a common shape: {TLS_BLOCKS}"
    assert len(SUFFIXES) > 2, f"__common_tls_input in roles/common/vars/main.yml names no inputs: {SUFFIXES}"
    assert not SPLIT, f"no shape most roles declare (the blocks split, by how many agree): {SPLIT}"


def test_common_tls_entry_documents_the_suffixes():
    """The tls entry's description names every input it reads."""
    entry = entries(ROOT / "roles" / "common").get("tls") or {}
    text = " ".join(entry.get("description") or [])
    missing = [s for s in SUFFIXES if s != SWITCH and f"_tls_{s})" not in text]
    assert not missing, f"common: the tls entry's description does not name _tls_{missing}"


def test_exceptions_are_in_use():
    """Every listed exception still applies to an existing block or input."""
    prefixes = {prefix for _, prefix, _ in BLOCKS}
    all_inputs = set().union(*(role_inputs(role) for role in ROLES))
    stale = sorted(
        [p for p in NO_SWITCH if p not in prefixes]
        + [f"{p}_tls_{s}" for p, s in (*DEFAULT_DIFFERS, *DESCRIPTION_DIFFERS) if p not in prefixes]
        + [n for n in KNOWN_EXTRAS if n not in all_inputs]
    )
    assert not stale, f"exceptions for blocks or inputs that do not exist: {stale}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_tls_switch_goes_through_common_tls(role: Path):
    """A role with <role>_tls_enabled (or another <prefix>_tls_enabled of its own block) makes its certificate
    through common's tls entry, each call gated on that switch."""
    inputs, prefixes = role_inputs(role), _tls_prefixes(role)
    if f"{role.name}_tls_{SWITCH}" in inputs:
        assert role.name in prefixes, (
            f"{role.name}: has {role.name}_tls_{SWITCH} but does not call common's tls entry with "
            f"common_tls_role: {role.name}"
        )
    switches = {n.removesuffix(f"_tls_{SWITCH}") for n in inputs if n.endswith(f"_tls_{SWITCH}")}
    unknown = sorted(f"{p}_tls_{SWITCH}" for p in switches - prefixes)
    unknown = [n for n in unknown if n not in KNOWN_EXTRAS]
    assert not unknown, f"{role.name}: TLS switches of no block that common's tls entry makes: {unknown}"
    for task in common_calls(role, "tls"):
        prefix = (task.get("vars") or {}).get("common_tls_role")
        assert f"{prefix}_tls_{SWITCH}" in _when(task), (
            f"{role.name}: '{task.get('name')}' calls common's tls entry for {prefix} without "
            f"`when: {prefix}_tls_{SWITCH}`: {_when(task)!r}"
        )


@pytest.mark.parametrize("block", BLOCKS, ids=_block_id)
def test_block_declares_every_suffix(block):
    role, prefix, _ = block
    expected = [s for s in SUFFIXES if not (s == SWITCH and prefix in NO_SWITCH)]
    spec, defaults = _spec(role), role_defaults(role)
    missing_spec = [f"{prefix}_tls_{s}" for s in expected if f"{prefix}_tls_{s}" not in spec]
    missing_defaults = [f"{prefix}_tls_{s}" for s in expected if f"{prefix}_tls_{s}" not in defaults]
    assert not missing_spec, f"{role.name}: the TLS block misses in argument_specs.yml (main): {missing_spec}"
    assert not missing_defaults, f"{role.name}: the TLS block misses in defaults/main.yml: {missing_defaults}"
    if prefix in NO_SWITCH:
        assert f"{prefix}_tls_{SWITCH}" not in spec, (
            f"{role.name}: {prefix}_tls_{SWITCH} exists; drop {prefix} from NO_SWITCH"
        )


@pytest.mark.parametrize("block", BLOCKS, ids=_block_id)
def test_block_has_the_common_spec(block):
    role, prefix, _ = block
    wrong = []
    for suffix in SUFFIXES:
        name, want = f"{prefix}_tls_{suffix}", CANONICAL[suffix]["spec"]
        got = _shape(prefix, role, suffix)["spec"]
        if got is None:
            continue  # test_block_declares_every_suffix
        for key in sorted(set(want) | set(got)):
            if got.get(key) != want.get(key):
                wrong.append(f"{name}: {key} is {got.get(key)!r}, the other roles' {want.get(key)!r}")
    assert not wrong, f"{role.name}: argument spec differs from the common TLS block:{_listing(wrong)}"


@pytest.mark.parametrize("block", BLOCKS, ids=_block_id)
def test_block_has_the_common_defaults(block):
    role, prefix, _ = block
    wrong = []
    for suffix in SUFFIXES:
        name, want = f"{prefix}_tls_{suffix}", CANONICAL[suffix]["default"]
        got = role_defaults(role).get(name, "<missing>")
        if got == "<missing>" or (prefix, suffix) in DEFAULT_DIFFERS:
            continue
        if got != want:
            wrong.append(f"{name}: {got!r}, the other roles' {want!r}")
    assert not wrong, f"{role.name}: defaults/main.yml differs from the common TLS block:{_listing(wrong)}"


@pytest.mark.parametrize("block", BLOCKS, ids=_block_id)
def test_block_has_the_common_descriptions(block):
    role, prefix, _ = block
    wrong = []
    for suffix in SUFFIXES:
        if suffix in DESCRIPTION_PER_BLOCK or (prefix, suffix) in DESCRIPTION_DIFFERS:
            continue
        name, want = f"{prefix}_tls_{suffix}", CANONICAL[suffix]["description"]
        got = _shape(prefix, role, suffix)["description"]
        if name in _spec(role) and got != want:
            wrong.append(f"{name}: {got!r}, the other roles' {want!r}")
    assert not wrong, (
        f"{role.name}: descriptions word the common TLS block's rules differently (<role> is the prefix):"
        f"{_listing(wrong)}"
    )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_other_tls_inputs_are_known_extras(role: Path):
    prefixes = {prefix for r, prefix, _ in BLOCKS if r == role}
    block_inputs = {f"{p}_tls_{s}" for p in prefixes for s in SUFFIXES}
    unknown = sorted(
        n for n in role_inputs(role) if "_tls_" in n and n not in block_inputs | set(KNOWN_EXTRAS)
    )
    assert not unknown, (
        f"{role.name}: TLS inputs outside its TLS block ({sorted(prefixes)}); add them to the block's "
        f"suffixes or to KNOWN_EXTRAS with a reason: {unknown}"
    )
