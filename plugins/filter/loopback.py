# Copyright: lookout maintainers
# MIT License
"""Where a role reaches its own server from the host itself: its listen address, a wildcard on loopback.

`loopback_address` turns a listen address into the address the role's readiness wait, health checks and
scrape of itself connect to. A wildcard (`''`, `*`, `0.0.0.0`, `::`, `[::]`: every address) becomes
`127.0.0.1`, never `::1`: the certificate common's tls entry issues names `localhost` and `127.0.0.1` only
(`__common_tls_loopback_names`), so a wait on `::1` would fail its TLS verification. A service listening on
`::` or `[::]` takes IPv4 too (Go's listeners on the IPv6 wildcard always do; others where the host's
`net.ipv6.bindv6only` is 0, Linux's default). Any other address is returned as it is.

With `bracket=true`, an IPv6 literal comes back in brackets (`2001:db8::1` as `[2001:db8::1]`), as a URL or
a host:port needs it; one in brackets already stays as it is.
"""

from ansible.errors import AnsibleFilterError

LOOPBACK = "127.0.0.1"
WILDCARDS = frozenset({"", "*", "0.0.0.0", "::", "[::]"})


def loopback_address(address, bracket=False):
    """The address to reach a server listening on `address` from its own host (see the module's text)."""
    if not isinstance(address, str):
        raise AnsibleFilterError(
            f"loopback_address: a listen address is a string, got {address!r} ({type(address).__name__})"
        )
    if address in WILDCARDS:
        return LOOPBACK
    if bracket and ":" in address and not address.startswith("["):
        return f"[{address}]"
    return address


class FilterModule:
    def filters(self):
        return {"loopback_address": loopback_address}
