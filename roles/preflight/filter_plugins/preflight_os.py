"""The OS facts glassbox's roles read, from preflight's one raw read of the host.

The roles read six facts and no others: distribution, distribution_major_version,
distribution_version, distribution_release, architecture and kernel (plus os_family, which
comes with them). The setup module would cost a module run (about a second on a Molecule
target, more than the rest of preflight's read); the same values come from the files setup
itself reads, in the same raw call that measures disk and memory.

Only Debian and Ubuntu are derived here, the systems preflight_supported_os allows and the
roles' apt sources serve; every other system (and a Debian or Ubuntu whose files say less
than this needs) yields {} and preflight gathers setup's `min` subset instead, so no fact
comes from a guess. What setup does for the two (ansible-core's
module_utils/facts/system/distribution.py with its bundled distro.py, best version):
- distribution "Debian" or "Ubuntu" (os-release ID debian or ubuntu);
- distribution_version: on Debian the point release in /etc/debian_version ("12.11"); on
  Ubuntu os-release's VERSION_ID ("24.04"; its /etc/debian_version names a Debian codename);
- distribution_major_version: the version up to its first dot;
- distribution_release: VERSION_CODENAME ("bookworm", "noble");
- architecture `uname -m`, kernel `uname -r` (setup's platform.machine() and .release()).
tests/test_host_roles.py compares the result with setup's on this machine (Debian 12) and
Molecule's verify on its Debian 13 target.

Input: the `values` of glassbox_host_probe (plugins/filter/glassbox.py) over the read's
`value <name>|<text>` lines (roles/preflight/vars/main.yml): os-release's ID, VERSION_ID and
VERSION_CODENAME (quoted as the file quotes them), debian_version, kernel and machine.
"""

from __future__ import annotations

import re
from typing import Any

NAMES = {"debian": "Debian", "ubuntu": "Ubuntu"}
VERSION = re.compile(r"\d+(\.\d+)*")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def os_facts(values: dict[str, str]) -> dict[str, Any]:
    """The facts the read's values give (see the module docstring), or {} when setup must say."""
    release = {
        key: _unquote(values.get(key, "")) for key in ("ID", "VERSION_ID", "VERSION_CODENAME")
    }
    read = {key: values.get(key, "").strip() for key in ("debian_version", "kernel", "machine")}
    distribution = NAMES.get(release["ID"])
    if distribution is None:
        return {}
    version = release["VERSION_ID"]
    if distribution == "Debian" and VERSION.fullmatch(read["debian_version"]):
        version = read["debian_version"]
    codename = release["VERSION_CODENAME"]
    if not (VERSION.fullmatch(version) and codename and read["kernel"] and read["machine"]):
        return {}
    return {
        "distribution": distribution,
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0],
        "distribution_release": codename,
        "architecture": read["machine"],
        "kernel": read["kernel"],
        "os_family": "Debian",
    }


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Any]:
        return {"preflight_os_facts": os_facts}
