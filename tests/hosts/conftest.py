"""Host-state tests (pytest-testinfra): they read a converged scenario host, named with --hosts.

The molecule scenarios run them from their verify (`--hosts=docker://<instance>`). Without --hosts testinfra
would read this machine, which lookout never converges: every test here is then skipped, saying why.

What differs between scenarios and hosts (ports, listen addresses, TLS on or off, the database engine) the
verify passes as the role inputs it has for that host, in LOOKOUT_HOST_INPUTS (a JSON object keyed by the
inputs' names: {"conduit_port": 5566, ...}); the `inputs` fixture reads it. Paths, users and modes no
inventory sets are the roles' defaults and internals, written in each test module.
"""

import json
import os
import re

import pytest

INPUTS_VARIABLE = "LOOKOUT_HOST_INPUTS"
# Every unit lookout writes or amends is hardened to at most this exposure (docs/conventions.md).
EXPOSURE_LIMIT = 2.5
# The shells of a system user nobody logs in as.
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")
# Prints the first address a name resolves to on the host, IPv4 first: what the roles bind to for a name.
RESOLVE = (
    "import socket, sys; "
    "found = {info[4][0] for info in socket.getaddrinfo(sys.argv[1], None, proto=socket.IPPROTO_TCP)}; "
    "print(sorted(found, key=lambda address: (':' in address, address))[0])"
)


def pytest_collection_modifyitems(config, items):
    if config.getoption("hosts", default=None):
        return
    skip = pytest.mark.skip(
        reason="host-state test: needs a converged scenario host (--hosts=docker://<instance>); "
        "the molecule scenarios run it from their verify"
    )
    for item in items:
        if item.path.parent.name == "hosts":
            item.add_marker(skip)


class Inputs(dict):
    """The role inputs the verify passed; a missing one fails the test, naming it."""

    def __missing__(self, name):
        pytest.fail(f"{INPUTS_VARIABLE} has no {name!r}: the verify passes every input this test reads")

    def require(self, flag):
        """Skips the test, saying why, when the boolean input `flag` is off on this host."""
        if not self[flag]:
            pytest.skip(f"{flag} is false on this host")


@pytest.fixture(scope="session")
def inputs():
    raw = os.environ.get(INPUTS_VARIABLE)
    if raw is None:
        pytest.fail(f"{INPUTS_VARIABLE} is not set: the scenario's verify passes the host's inputs in it")
    return Inputs(json.loads(raw))


@pytest.fixture
def mode_and_owner(host):
    """Checks that a path exists with this mode, owner and group."""

    def check(path, mode, user, group):
        found = host.file(path)
        assert found.exists, path
        assert found.mode == mode, f"{path}: {oct(found.mode)}"
        assert (found.user, found.group) == (user, group), path

    return check


@pytest.fixture
def tls_files(inputs, mode_and_owner):
    """Checks a service's TLS files, skipped while the boolean input `switch` is off (None: always on): the
    private ones (key, key-and-certificate bundle, a web configuration naming them) 0640 root:<group>, the
    public ones (certificate, the CA's copy) 0644 root:root."""

    def check(switch, group, private, public):
        if switch is not None:
            inputs.require(switch)
        for path in private:
            mode_and_owner(path, 0o640, "root", group)
        for path in public:
            mode_and_owner(path, 0o644, "root", "root")

    return check


@pytest.fixture
def running_and_enabled(host):
    """Checks that a systemd unit (service or timer) is running and starts at boot."""

    def check(name):
        unit = host.service(name)
        assert unit.is_running, name
        assert unit.is_enabled, name

    return check


@pytest.fixture
def system_user_without_login(host):
    """Checks that a user is a system user (uid below 1000) nobody logs in as."""

    def check(name):
        user = host.user(name)
        assert user.exists, name
        assert user.uid < 1000, f"{name}: uid {user.uid}"
        assert user.shell in NOLOGIN_SHELLS, f"{name}: {user.shell}"

    return check


@pytest.fixture
def unit_property(host):
    """A property of a systemd unit, as `systemctl show` gives it."""

    def read(unit, name):
        return host.check_output("systemctl show --property %s --value %s", name, unit)

    return read


@pytest.fixture
def exposure_within_limit(host):
    """Checks the overall exposure level `systemd-analyze security` gives a unit: at most EXPOSURE_LIMIT."""

    def check(unit):
        rating = host.check_output("systemd-analyze security --no-pager %s", unit)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", rating)
        assert level, rating
        assert float(level.group(1)) <= EXPOSURE_LIMIT, rating.splitlines()[-1]

    return check


@pytest.fixture
def listeners(host):
    """The addresses with a listening TCP socket on a port (wildcards as ss shows them: 0.0.0.0, *, ::)."""

    def on(port):
        found = set()
        for line in host.check_output("ss -Hltn").splitlines():
            address, _, number = line.split()[3].rpartition(":")
            if int(number) == int(port):
                found.add(address.split("%")[0].strip("[]"))
        return found

    return on


@pytest.fixture
def address_of(host):
    """The address a name (or an address) resolves to on the host, as the roles resolve a listen address."""

    def resolve(name):
        return host.check_output("python3 -c %s %s", RESOLVE, name)

    return resolve
