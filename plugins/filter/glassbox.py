"""Small rules the whole project shares, as filters (ansible.cfg: filter_plugins = plugins/filter).

Plain Python, unit-tested in tests/unit/test_glassbox_filters.py.
"""

from __future__ import annotations

import os
from typing import Any

WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")  # noqa: S104 - compared against, never bound


def credentials_dir(inventory_dir: str | None, inventory_sources: list[str] | None) -> str:
    """The controller directory for generated credentials: `credentials/` beside the inventory.

    The host's own inventory directory when Ansible knows it (a host listed in the inventory),
    else the first inventory source given with -i (a directory, or the directory of a file):
    the implicit localhost of the controller plays has no inventory_dir.
    """
    base = inventory_dir or ""
    if not base:
        sources = [s for s in (inventory_sources or []) if s]
        if not sources:
            raise ValueError("no inventory source: run ansible-playbook with -i <inventory>")
        first = sources[0]
        base = first if os.path.isdir(first) else os.path.dirname(first)
    return os.path.join(base, "credentials")


def probe_host(bind_address: str) -> str:
    """Where the host itself reaches a port published on bind_address."""
    return "127.0.0.1" if bind_address in WILDCARD_ADDRESSES else bind_address


def env_files(names: list[str], templates_dir: str, subdir: str = "env") -> list[dict]:
    """compose_project file specs for `<name>.env.j2` templates: rendered to <subdir>/<name>.env,
    0600, as secrets (env files hold the service's passwords and keys)."""
    return [
        {
            "src": f"{templates_dir}/{name}.env.j2",
            "dest": f"{subdir}/{name}.env" if subdir else f"{name}.env",
            "mode": "0600",
            "secret": True,
        }
        for name in names
    ]


def host_addresses(names: list[str], hostvars: Any, var: str) -> list[str]:
    """The address each named host is reached at: its `var` when the inventory sets it, else
    ansible_host, else its inventory name (the same precedence as vllm_public_host's default)."""
    out = []
    for name in names or []:
        values = hostvars[name]
        address = values.get(var) or values.get("ansible_host") or name
        out.append(str(address))
    return out


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "glassbox_credentials_dir": credentials_dir,
            "glassbox_probe_host": probe_host,
            "glassbox_env_files": env_files,
            "glassbox_host_addresses": host_addresses,
        }
