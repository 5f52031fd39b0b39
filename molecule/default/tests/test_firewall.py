"""The host firewall in the converged target (roles/host_firewall): its own unit and table,
input closed but for SSH and the proxy, and nothing else listening off loopback.

The scenario sets host_firewall_enabled: true (Molecule's docker connection is not SSH, so
the default `auto` would leave it off)."""

from __future__ import annotations

import json

SSH_PORT = 22


def _table(host) -> list[dict]:
    with host.sudo():
        return json.loads(host.check_output("nft -j list table inet glassbox"))["nftables"]


def _chains(table: list[dict]) -> dict[str, dict]:
    return {item["chain"]["name"]: item["chain"] for item in table if "chain" in item}


def _rules(table: list[dict], chain: str) -> list[list[dict]]:
    return [item["rule"]["expr"] for item in table if item.get("rule", {}).get("chain") == chain]


def _tcp_dports(expr: list[dict]) -> set[int]:
    """The ports of a `tcp dport { ... } accept` rule without a source match; empty otherwise."""
    if expr[-1] != {"accept": None}:
        return set()
    ports: set[int] = set()
    for part in expr[:-1]:
        match = part.get("match", {})
        left = match.get("left", {}).get("payload", {})
        if left.get("protocol") in ("ip", "ip6"):
            return set()  # a source-restricted rule
        if left.get("protocol") == "tcp" and left.get("field") == "dport":
            right = match["right"]
            values = right.get("set", [right]) if isinstance(right, dict) else [right]
            ports |= {v for v in values if isinstance(v, int)}
    return ports


def _listeners(host) -> list[tuple[str, int, str]]:
    """(address, port, process) of every TCP listener (`ss -ltnpH`)."""
    with host.sudo():
        out = host.check_output("ss -ltnpH")
    found = []
    for line in out.splitlines():
        fields = line.split()
        address, _, port = fields[3].rpartition(":")
        process = fields[5].split('"')[1] if len(fields) > 5 and '"' in fields[5] else ""
        found.append((address.strip("[]"), int(port), process))
    return found


def _loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1" or address.endswith("%lo")


def test_own_unit_loads_the_table_and_nftables_service_stays_off(host):
    unit = host.service("glassbox-firewall")
    assert unit.is_running  # oneshot + RemainAfterExit: active
    assert unit.is_enabled
    # Debian's nftables.service flushes the whole rule set (Docker's tables too) on stop.
    assert not host.service("nftables").is_enabled


def test_docker_tables_live_beside_ours(host):
    with host.sudo():
        tables = host.check_output("nft list tables").splitlines()
    assert "table inet glassbox" in tables
    assert "table ip nat" in tables, "Docker's NAT table is gone"


def test_chains_hooks_and_policies(host):
    chains = _chains(_table(host))
    assert chains["input"]["hook"] == "input"
    assert chains["input"]["policy"] == "drop"
    assert chains["forward"]["hook"] == "forward"
    assert chains["prerouting"]["hook"] == "prerouting"
    assert chains["prerouting"]["prio"] == -300  # raw


def test_forward_guard_and_loopback_guard_are_in_place(host):
    with host.sudo():
        text = host.check_output("nft list table inet glassbox")
    assert 'oifname "docker0" drop' in text
    assert 'oifname "br-*" drop' in text
    assert 'iif != "lo" ip daddr 127.0.0.0/8 drop' in text


def test_only_ssh_and_the_proxy_listen_off_loopback_and_the_firewall_opens_exactly_those(host):
    listeners = [entry for entry in _listeners(host) if not _loopback(entry[0])]
    proxy = {port for _address, port, process in listeners if process == "caddy"}
    assert proxy, f"the proxy (caddy) listens on no public port: {listeners}"
    strangers = [entry for entry in listeners if entry[1] not in proxy and entry[2] != "sshd"]
    assert strangers == [], f"listening off loopback besides SSH and the proxy: {strangers}"
    table = _table(host)
    open_ports = set().union(*(_tcp_dports(expr) for expr in _rules(table, "input")))
    assert open_ports - {SSH_PORT} == proxy, (
        f"the firewall opens {sorted(open_ports)}, the proxy listens on {sorted(proxy)}"
    )
    assert SSH_PORT in open_ports
