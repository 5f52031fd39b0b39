"""roles/host_firewall for real on faked local hosts, with a real nft in throwaway network
namespaces (tests/nft_tool.py): the SSH guard refuses settings that would close this run's SSH
connection (SSH_CONNECTION faked in the environment) before anything is written; the rendered
rule set passes `nft -c -f` (the template's own validate, with the real nft); applied in a fresh
network namespace it leaves a foreign table alone, and a second apply changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ansible_run import PlaybookRun, local_inventory, play
from tests.nft_tool import Nft, find_nft

pytestmark = [pytest.mark.roles, pytest.mark.timeout(300)]

# The controller 192.0.2.10 reached sshd on port 2222 (ssh(1) ENVIRONMENT: client ip, client port,
# server ip, server port).
LIVE_SSH = "192.0.2.10 51234 198.51.100.5 2222"

HOSTS = {
    # host_firewall_ssh_ports lacks the live port: refused.
    "closes_port": {"host_firewall_enabled": True, "host_firewall_ssh_ports": [22]},
    # the live client is outside host_firewall_ssh_cidrs: refused.
    "wrong_cidr": {
        "host_firewall_enabled": True,
        "host_firewall_ssh_ports": [2222],
        "host_firewall_ssh_cidrs": ["10.0.0.0/8"],
    },
    "bad_switch": {"host_firewall_enabled": "sometimes"},
    "bad_cidr": {"host_firewall_enabled": True, "host_firewall_ssh_cidrs": ["office"]},
    # good: SSH from two CIDRs, the proxy's ports, one extra port.
    "good": {
        "host_firewall_enabled": True,
        "host_firewall_ssh_ports": [22, 2222],
        "host_firewall_ssh_cidrs": ["192.0.2.0/24", "2001:db8::/32"],
        "host_firewall_extra_tcp_ports": [9090],
        "glassbox_edge_ports": [443, 80, 8000],
    },
    # good, ufw active: no input chain (ufw owns it), the guards stay.
    "good_ufw": {
        "host_firewall_enabled": True,
        "host_firewall_ssh_ports": [2222],
        "__host_firewall_ufw_active": True,
    },
    # local connection, nothing set: the firewall is off, so even a closing list passes.
    "local_auto": {"host_firewall_ssh_ports": [22]},
    # the whole role (main), not the entry points: refused before its first change too.
    "main_closes_port": {"host_firewall_enabled": True, "host_firewall_ssh_ports": [22]},
}


@pytest.fixture(scope="module")
def nft() -> Nft:
    return find_nft()


def _run(tmp_path: Path, nft: Nft) -> PlaybookRun:
    hosts = {
        name: {**host_vars, "host_firewall_ruleset_file": str(tmp_path / name / "firewall.nft")}
        for name, host_vars in HOSTS.items()
    }
    plays = [
        {
            "name": "host_firewall under test",
            "hosts": "all:!main_closes_port",
            "gather_facts": False,
            "tasks": [
                {
                    "name": f"host_firewall {entry}",
                    "ansible.builtin.include_role": {"name": "host_firewall", "tasks_from": entry},
                    "when": "__host_firewall_on | default(true)",
                }
                for entry in ("validate", "ruleset")
            ],
        },
        {
            "name": "host_firewall main under test",
            "hosts": "main_closes_port",
            "gather_facts": False,
            "roles": ["host_firewall"],
        },
    ]
    return play(
        tmp_path / "run",
        plays,
        inventory=local_inventory(hosts),
        env={"SSH_CONNECTION": LIVE_SSH},
        path=[nft.wrapper_dir(tmp_path / "bin")],
    )


@pytest.fixture(scope="module")
def first_and_second(tmp_path_factory: pytest.TempPathFactory, nft: Nft):
    tmp_path = tmp_path_factory.mktemp("host_firewall")
    return tmp_path, _run(tmp_path, nft), _run(tmp_path, nft)


def test_settings_that_would_close_the_live_ssh_port_are_refused(first_and_second):
    tmp_path, run, _ = first_and_second
    (message,) = run.failures("closes_port")
    assert "host_firewall_ssh_ports" in message
    assert "port 2222" in message
    assert "lock you out" in message
    assert not (tmp_path / "closes_port").exists(), "refused, yet the rule set was written"


def test_the_whole_role_refuses_a_closing_list_before_its_first_change(first_and_second):
    """main reads the host first (one read-only probe) and compares afterwards: the guard must
    still stop it before the package, the directory or any file is touched."""
    tmp_path, run, _ = first_and_second
    (message,) = run.failures("main_closes_port")
    assert "port 2222" in message
    assert "lock you out" in message
    assert run.changed("main_closes_port") == 0
    ran = [
        task["task"]["name"]
        for each_play in run.report["plays"]
        for task in each_play["tasks"]
        if "main_closes_port" in task["hosts"]
        and not task["hosts"]["main_closes_port"].get("skipped")
    ]
    assert not any(name.startswith(("Install", "Create", "Render", "Load")) for name in ran), ran
    assert not (tmp_path / "main_closes_port").exists()


def test_a_live_client_outside_the_ssh_cidrs_is_refused(first_and_second):
    tmp_path, run, _ = first_and_second
    (message,) = run.failures("wrong_cidr")
    assert "host_firewall_ssh_cidrs" in message
    assert "192.0.2.10" in message
    assert not (tmp_path / "wrong_cidr").exists()


@pytest.mark.parametrize(
    ("host", "variable"),
    [("bad_switch", "host_firewall_enabled"), ("bad_cidr", "host_firewall_ssh_cidrs")],
)
def test_bad_values_are_refused_naming_the_variable(first_and_second, host, variable):
    tmp_path, run, _ = first_and_second
    (message,) = run.failures(host)
    assert variable in message
    assert not (tmp_path / host).exists()


def test_a_local_connection_skips_the_firewall_unless_asked(first_and_second):
    tmp_path, run, _ = first_and_second
    assert run.failures("local_auto") == []
    assert not (tmp_path / "local_auto").exists()


def test_good_settings_render_a_rule_set_nft_accepts(first_and_second):
    tmp_path, run, second = first_and_second
    assert run.failures("good") == [], run.output
    text = (tmp_path / "good" / "firewall.nft").read_text()
    assert "ip saddr { 192.0.2.0/24 } tcp dport { 22, 2222 } accept" in text
    assert "ip6 saddr { 2001:db8::/32 } tcp dport { 22, 2222 } accept" in text
    assert "tcp dport { 80, 443, 8000, 9090 } accept" in text
    assert "ct original proto-dst { 80, 443, 8000, 9090 } accept" in text
    assert "type filter hook input priority filter; policy drop;" in text
    ufw = (tmp_path / "good_ufw" / "firewall.nft").read_text()
    assert "chain input" not in ufw
    assert 'oifname "docker0" drop' in ufw
    assert "ip daddr 127.0.0.0/8 drop" in ufw
    # the template's validate ran the real nft: a second run finds the same files
    assert second.changed("good") == 0
    assert second.changed("good_ufw") == 0


def test_a_rule_set_nft_refuses_is_never_written(tmp_path, nft):
    """The template's `nft -c -f` is a real check: a port nft cannot parse stops the write
    (the port list is forced past the filter's checks on purpose)."""
    target = tmp_path / "firewall.nft"
    plays = [
        {
            "name": "host_firewall ruleset with a broken port list",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "host_firewall ruleset",
                    "ansible.builtin.include_role": {
                        "name": "host_firewall",
                        "tasks_from": "ruleset",
                    },
                    "vars": {
                        "host_firewall_ruleset_file": str(target),
                        "__host_firewall_settings": {
                            "ssh_ports": [22],
                            "ssh_cidrs": [],
                            "edge_ports": [443],
                            "extra_tcp_ports": [],
                        },
                        "__host_firewall_rules": {
                            "ssh_ports": [22],
                            "ssh_cidrs_v4": ["10.0.0.0/8"],
                            "ssh_cidrs_v6": [],
                            "ssh_from_anywhere": False,
                            "open_tcp_ports": ["443;"],
                        },
                    },
                }
            ],
        }
    ]
    run = play(
        tmp_path / "run",
        plays,
        inventory=local_inventory(),
        path=[nft.wrapper_dir(tmp_path / "bin")],
    )
    assert run.rc != 0
    assert any("failed to validate" in m for m in run.failures("localhost")), run.output
    assert not target.exists()


# A table like the ones Docker writes through iptables-nft, in the same namespace as ours.
FOREIGN = """
table ip nat {
    chain POSTROUTING {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 172.17.0.0/16 oifname != "docker0" masquerade
    }
}
"""


def test_applying_twice_keeps_foreign_tables_and_changes_nothing(first_and_second, nft):
    tmp_path, run, _ = first_and_second
    assert run.failures("good") == []
    ruleset = tmp_path / "good" / "firewall.nft"
    foreign = tmp_path / "foreign.nft"
    foreign.write_text(FOREIGN)
    proc = nft.script(
        f"""
        $NFT -f {foreign}
        $NFT -f {ruleset}
        $NFT list ruleset > {tmp_path}/after-first
        $NFT -f {ruleset}
        $NFT list ruleset > {tmp_path}/after-second
        $NFT delete table inet glassbox
        $NFT list ruleset > {tmp_path}/after-stop
        """
    )
    assert proc.returncode == 0, proc.stderr
    first = (tmp_path / "after-first").read_text()
    assert "table inet glassbox" in first
    assert "masquerade" in first, "the foreign table is gone after our apply"
    assert "policy drop" in first
    assert (tmp_path / "after-second").read_text() == first
    stopped = (tmp_path / "after-stop").read_text()
    assert "table inet glassbox" not in stopped
    assert "masquerade" in stopped, "the unit's stop command took the foreign table with it"


def test_auto_means_on_over_ssh_with_tls_and_off_otherwise(tmp_path):
    """`auto` decides by the connection: the SSH hosts below point at a closed local port, so a
    host whose firewall is on shows up unreachable at the SSH_CONNECTION read (the first task
    that touches the host); a host whose firewall is off never connects."""
    closed = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "nobody"}
    inventory = {
        "all": {
            "hosts": {
                "ssh_unset": dict(closed),  # ansible_connection unset = ssh
                "ssh_named": {**closed, "ansible_connection": "ansible.builtin.ssh"},
                "ssh_tls_off": {**closed, "ansible_connection": "ssh", "glassbox_tls": False},
                "ssh_forced_off": {**closed, "host_firewall_enabled": False},
                "docker_auto": {"ansible_connection": "community.docker.docker"},
            }
        }
    }
    plays = [
        {
            "name": "host_firewall validate",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "host_firewall validate",
                    "ansible.builtin.include_role": {
                        "name": "host_firewall",
                        "tasks_from": "validate",
                    },
                }
            ],
        }
    ]
    run = play(tmp_path, plays, inventory=inventory, timeout=120)
    unreachable = {host for host, stats in run.stats.items() if stats["unreachable"]}
    assert unreachable == {"ssh_unset", "ssh_named"}, run.output
    assert run.failed_hosts() == set(), run.output
