"""Filters of the host_firewall role: the SSH lock-out guard and the rule set's data.

Plain Python on purpose (tests/unit/test_firewall_filters.py runs them in milliseconds):

- `ssh_connection_parts(text)`: the fields of the SSH_CONNECTION variable sshd sets
  ("client_ip client_port server_ip server_port", ssh(1) ENVIRONMENT) as a dict, {} when absent;
- `firewall_problems(settings, ssh_connection)`: every reason to refuse the settings, each naming
  its variable; among them the lock-out guard (the port this very SSH connection uses must stay
  open to the address it comes from);
- `firewall_ruleset(settings)`: the normalised data the nftables template renders;
- `firewall_mode(value)`: host_firewall_enabled as 'auto', 'true' or 'false'; '' when the value
  is none of the allowed ones (validate.yml then refuses it, naming the variable).

`settings` is a dict with the keys ssh_ports, ssh_cidrs, edge_ports, extra_tcp_ports (the role's
host_firewall_ssh_ports, host_firewall_ssh_cidrs, glassbox_edge_ports,
host_firewall_extra_tcp_ports).
"""

from __future__ import annotations

import ipaddress
from typing import Any

VARIABLES = {
    "ssh_ports": "host_firewall_ssh_ports",
    "ssh_cidrs": "host_firewall_ssh_cidrs",
    "edge_ports": "glassbox_edge_ports",
    "extra_tcp_ports": "host_firewall_extra_tcp_ports",
}
PORT_KEYS = ("ssh_ports", "edge_ports", "extra_tcp_ports")


def _port(value: Any) -> int | None:
    """A TCP port as int, or None when the value is not one (bools are not ports)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 1 <= value <= 65535:
        return value
    return None


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    # sshd on a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def ssh_connection_parts(text: Any) -> dict[str, Any]:
    """SSH_CONNECTION's four fields; {} when the text is empty or not in that shape."""
    fields = str(text or "").split()
    if len(fields) != 4:
        return {}
    client_ip, client_port, server_ip, server_port = fields
    client, port = _address(client_ip), _port(server_port)
    if client is None or port is None:
        return {}
    return {
        "client_ip": str(client),
        "client_port": _port(client_port),
        "server_ip": server_ip,
        "server_port": port,
    }


def _ports(values: Any) -> list[int]:
    return sorted({p for p in (_port(v) for v in values or []) if p is not None})


def firewall_problems(settings: dict[str, Any], ssh_connection: Any = "") -> list[str]:
    """Every reason to refuse the settings (empty when they are good). `ssh_connection` is the
    SSH_CONNECTION text of the connection Ansible uses (empty for local or docker connections)."""
    problems = []
    for key in (*PORT_KEYS, "ssh_cidrs"):
        values = settings.get(key)
        if values is None:
            values = []
        if not isinstance(values, list):
            problems.append(f"{VARIABLES[key]} must be a list, not {values!r}.")
            continue
        check = _port if key in PORT_KEYS else _network
        allowed = "TCP ports (1-65535)" if key in PORT_KEYS else "CIDRs such as 192.0.2.0/24"
        bad = [v for v in values if check(v) is None]
        if bad:
            problems.append(
                f"{VARIABLES[key]} has {', '.join(map(repr, bad))}: only {allowed} are allowed."
            )
    if settings.get("ssh_ports") in (None, []):
        problems.append(
            "host_firewall_ssh_ports is empty: the firewall would close SSH for good. "
            "List the port(s) sshd listens on (default [22])."
        )
    if problems:
        return problems
    return _lock_out(settings, ssh_connection_parts(ssh_connection))


def _lock_out(settings: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """The guard: the live SSH connection's server port must stay open to its client."""
    if not live:
        return []
    port, client = live["server_port"], ipaddress.ip_address(live["client_ip"])
    open_to_all = set(_ports(settings.get("edge_ports"))) | set(
        _ports(settings.get("extra_tcp_ports"))
    )
    if port in open_to_all:
        return []
    where = f"this run's SSH connection (SSH_CONNECTION: {client} -> port {port})"
    if port not in _ports(settings.get("ssh_ports")):
        return [
            f"host_firewall_ssh_ports is {_ports(settings.get('ssh_ports'))} but {where} uses "
            f"port {port}: the firewall would close it and lock you out. Add {port} to "
            "host_firewall_ssh_ports (nothing was changed)."
        ]
    cidrs = [_network(c) for c in settings.get("ssh_cidrs") or []]
    if cidrs and not any(client.version == net.version and client in net for net in cidrs):
        return [
            f"host_firewall_ssh_cidrs is {[str(c) for c in cidrs]} but {where} comes from "
            f"{client}, outside every one of them: the firewall would lock you out. Add a CIDR "
            "that holds that address to host_firewall_ssh_cidrs (nothing was changed)."
        ]
    return []


def firewall_ruleset(settings: dict[str, Any]) -> dict[str, Any]:
    """What the nftables template needs: SSH ports, the CIDRs SSH is open to (split by IP
    version; both empty = from anywhere), and the other TCP ports open to everyone. Call it on
    settings that firewall_problems accepted."""
    nets = [_network(c) for c in settings.get("ssh_cidrs") or []]
    ssh_ports = _ports(settings.get("ssh_ports"))
    open_ports = sorted(
        set(_ports(settings.get("edge_ports"))) | set(_ports(settings.get("extra_tcp_ports")))
    )
    return {
        "ssh_ports": ssh_ports,
        "ssh_cidrs_v4": sorted({str(n) for n in nets if n is not None and n.version == 4}),
        "ssh_cidrs_v6": sorted({str(n) for n in nets if n is not None and n.version == 6}),
        "ssh_from_anywhere": not nets,
        "open_tcp_ports": open_ports,
    }


def firewall_mode(value: Any) -> str:
    """host_firewall_enabled normalised: booleans and the strings auto, true, false, yes, no in
    any case (what YAML or `-e` can give); '' for anything else (1, 'on', 'sometimes', None)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        return ""
    return {"auto": "auto", "true": "true", "yes": "true", "false": "false", "no": "false"}.get(
        value.lower(), ""
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "ssh_connection_parts": ssh_connection_parts,
            "firewall_problems": firewall_problems,
            "firewall_ruleset": firewall_ruleset,
            "firewall_mode": firewall_mode,
        }
