"""ansible.cfg, used against every inventory (production included), checks host keys: it neither turns
host_key_checking off nor hands ssh an option that skips or auto-accepts keys. Test scenarios set their own
configuration for their own containers (molecule), never this file."""

import configparser

from controller_helpers import ROOT


def test_ansible_cfg_checks_host_keys():
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "ansible.cfg")
    assert config.getboolean("defaults", "host_key_checking", fallback=True)
    for section in ("ssh_connection", "connection"):
        for option in ("ssh_args", "ssh_common_args", "ssh_extra_args"):
            value = config.get(section, option, fallback="").lower().replace(" ", "")
            assert "stricthostkeychecking=no" not in value, (section, option)
            assert "stricthostkeychecking=accept-new" not in value, (section, option)
            assert "userknownhostsfile=/dev/null" not in value, (section, option)
