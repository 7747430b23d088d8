# Copyright: lookout maintainers
# MIT License
"""Sources of the firewall's rules: addresses, prefixes, host names and `any`, as nftables takes them.

- `firewall_bad_sources`: the entries that are none of these (a prefix with host bits set, such as
  10.0.0.1/8, is refused: nftables would silently widen or narrow it to the network).
- `firewall_source_names`: the host names among them, for the host's resolver.
- `firewall_sources`: the rule's sources by family, names replaced by the addresses they resolved to,
  overlapping prefixes merged; `any` (or 0.0.0.0/0 with ::/0) is every source.
- `firewall_allows`: whether the sources let an address in (the preflight's lock-out check).
"""

import ipaddress
import re

from ansible.errors import AnsibleFilterError

ANY = "any"
# Letters, digits and hyphens in dot-separated labels; digits and dots alone are an IPv4 address.
HOST_NAME = re.compile(
    r"(?![0-9.]+\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z"
)


def _network(value):
    """The address or prefix as a network; None for anything else (a name, `any`, a malformed prefix)."""
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        return None


def _is_name(value):
    return value != ANY and _network(value) is None and HOST_NAME.match(value) is not None


def firewall_bad_sources(values):
    """Entries that are neither an address, a prefix (its network address), a host name nor `any`."""
    return [v for v in map(str, values) if v != ANY and _network(v) is None and not _is_name(v)]


def firewall_source_names(values):
    """The host names among the entries, each once, in their order."""
    return list(dict.fromkeys(v for v in map(str, values) if _is_name(v)))


def _networks(values, resolved):
    """Every network the entries stand for; None when one of them is `any`."""
    networks = []
    for value in map(str, values):
        if value == ANY:
            return None
        network = _network(value)
        if network is not None:
            networks.append(network)
            continue
        if value not in resolved:
            raise AnsibleFilterError(f"firewall: {value} was not resolved on the host")
        networks.extend(ipaddress.ip_network(address) for address in resolved[value])
    return networks


def _text(network):
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)


def firewall_sources(values, resolved=None):
    """{'any': bool, 'ipv4': [...], 'ipv6': [...]}: the sources by family, merged, as nftables writes them."""
    networks = _networks(values, resolved or {})
    if networks is None:
        return {"any": True, "ipv4": [], "ipv6": []}
    families = {}
    for version, key in ((4, "ipv4"), (6, "ipv6")):
        merged = ipaddress.collapse_addresses(n for n in networks if n.version == version)
        families[key] = [_text(n) for n in merged]
    if families == {"ipv4": ["0.0.0.0/0"], "ipv6": ["::/0"]}:
        return {"any": True, "ipv4": [], "ipv6": []}
    return {"any": False, **families}


def firewall_allows(address, values, resolved=None):
    """Whether the sources let `address` in (an IPv4 address seen as IPv6, ::ffff:a.b.c.d, counts as IPv4)."""
    try:
        client = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped is not None:
        client = client.ipv4_mapped
    networks = _networks(values, resolved or {})
    return networks is None or any(client.version == n.version and client in n for n in networks)


class FilterModule:
    def filters(self):
        return {
            "firewall_bad_sources": firewall_bad_sources,
            "firewall_source_names": firewall_source_names,
            "firewall_sources": firewall_sources,
            "firewall_allows": firewall_allows,
        }
