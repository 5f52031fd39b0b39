"""The host_firewall filters (plugins/filter/firewall.py) as plain Python: the SSH lock-out
guard, the checks of every firewall variable, and the rule set's data."""

from __future__ import annotations

import pytest

from tests.unit import load_plugin

fw = load_plugin("plugins/filter/firewall.py")

GOOD = {"ssh_ports": [22], "ssh_cidrs": [], "edge_ports": [80, 443], "extra_tcp_ports": []}


def settings(**changes):
    return {**GOOD, **changes}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "192.0.2.10 51234 198.51.100.5 22",
            {
                "client_ip": "192.0.2.10",
                "client_port": 51234,
                "server_ip": "198.51.100.5",
                "server_port": 22,
            },
        ),
        (
            "::ffff:192.0.2.10 51234 ::ffff:198.51.100.5 2222",
            {
                "client_ip": "192.0.2.10",
                "client_port": 51234,
                "server_ip": "::ffff:198.51.100.5",
                "server_port": 2222,
            },
        ),
        ("fe80::1%eth0 40000 fe80::2%eth0 22", None),
        ("", {}),
        (None, {}),
        ("192.0.2.10 51234 198.51.100.5", {}),
        ("not-an-ip 51234 198.51.100.5 22", {}),
        ("192.0.2.10 51234 198.51.100.5 99999", {}),
    ],
)
def test_ssh_connection_parts(text, expected):
    parts = fw.ssh_connection_parts(text)
    if expected is None:  # a link-local client: the zone is dropped, the address kept
        assert parts["client_ip"] == "fe80::1"
        assert parts["server_port"] == 22
    else:
        assert parts == expected


def test_good_settings_without_ssh_connection_pass():
    assert fw.firewall_problems(GOOD, "") == []


def test_the_live_ssh_port_in_the_list_passes():
    assert fw.firewall_problems(GOOD, "192.0.2.10 5000 198.51.100.5 22") == []


def test_a_list_that_closes_the_live_ssh_port_is_refused():
    problems = fw.firewall_problems(settings(ssh_ports=[22]), "192.0.2.10 5000 198.51.100.5 2222")
    assert len(problems) == 1
    assert "host_firewall_ssh_ports" in problems[0]
    assert "2222" in problems[0]
    assert "lock you out" in problems[0]


def test_the_live_port_among_the_ports_open_to_everyone_passes():
    live = "192.0.2.10 5000 198.51.100.5 2222"
    assert fw.firewall_problems(settings(extra_tcp_ports=[2222]), live) == []
    assert fw.firewall_problems(settings(edge_ports=[443, 2222]), live) == []


def test_a_client_outside_the_ssh_cidrs_is_refused():
    problems = fw.firewall_problems(
        settings(ssh_cidrs=["10.0.0.0/8", "2001:db8::/32"]), "192.0.2.10 5000 198.51.100.5 22"
    )
    assert len(problems) == 1
    assert "host_firewall_ssh_cidrs" in problems[0]
    assert "192.0.2.10" in problems[0]


@pytest.mark.parametrize(
    ("cidrs", "client"),
    [
        (["192.0.2.0/24"], "192.0.2.10"),
        (["10.0.0.0/8", "192.0.2.10/32"], "192.0.2.10"),
        (["192.0.2.0/24"], "::ffff:192.0.2.10"),  # an IPv4 client on a dual-stack socket
        (["2001:db8::/32"], "2001:db8::7"),
    ],
)
def test_a_client_inside_the_ssh_cidrs_passes(cidrs, client):
    assert fw.firewall_problems(settings(ssh_cidrs=cidrs), f"{client} 5000 198.51.100.5 22") == []


@pytest.mark.parametrize(
    ("key", "value", "variable"),
    [
        ("ssh_ports", [0], "host_firewall_ssh_ports"),
        ("ssh_ports", [65536], "host_firewall_ssh_ports"),
        ("ssh_ports", ["ssh"], "host_firewall_ssh_ports"),
        ("ssh_ports", [True], "host_firewall_ssh_ports"),
        ("edge_ports", [443, -1], "glassbox_edge_ports"),
        ("extra_tcp_ports", ["80/tcp"], "host_firewall_extra_tcp_ports"),
        ("ssh_cidrs", ["10.0.0.0/33"], "host_firewall_ssh_cidrs"),
        ("ssh_cidrs", ["office"], "host_firewall_ssh_cidrs"),
        ("ssh_cidrs", "10.0.0.0/8", "host_firewall_ssh_cidrs"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(key, value, variable):
    problems = fw.firewall_problems(settings(**{key: value}), "")
    assert problems
    assert variable in problems[0]


def test_no_ssh_port_at_all_is_refused():
    problems = fw.firewall_problems(settings(ssh_ports=[]), "")
    assert problems == [p for p in problems if "host_firewall_ssh_ports is empty" in p]
    assert problems


def test_bad_values_are_reported_before_the_guard_runs():
    problems = fw.firewall_problems(settings(ssh_ports=["x"]), "192.0.2.10 5000 198.51.100.5 22")
    assert len(problems) == 1
    assert "'x'" in problems[0]


def test_ruleset_data():
    data = fw.firewall_ruleset(
        settings(
            ssh_ports=["2222", 22, 22],
            ssh_cidrs=["192.0.2.7/24", "2001:db8::/32", "10.0.0.0/8"],
            edge_ports=[443, 80, 8000],
            extra_tcp_ports=[9090, 443],
        )
    )
    assert data == {
        "ssh_ports": [22, 2222],
        "ssh_cidrs_v4": ["10.0.0.0/8", "192.0.2.0/24"],
        "ssh_cidrs_v6": ["2001:db8::/32"],
        "ssh_from_anywhere": False,
        "open_tcp_ports": [80, 443, 8000, 9090],
    }


def test_ruleset_ssh_from_anywhere_without_cidrs():
    data = fw.firewall_ruleset(GOOD)
    assert data["ssh_from_anywhere"] is True
    assert data["ssh_cidrs_v4"] == data["ssh_cidrs_v6"] == []
    assert data["open_tcp_ports"] == [80, 443]


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (True, "true"),
        (False, "false"),
        ("auto", "auto"),
        ("AUTO", "auto"),
        ("yes", "true"),
        ("True", "true"),
        ("no", "false"),
        ("false", "false"),
        ("sometimes", ""),
        ("on", ""),
        (" auto", ""),
        (1, ""),
        (None, ""),
    ],
)
def test_firewall_mode_takes_exactly_the_allowed_values(value, mode):
    assert fw.firewall_mode(value) == mode


glassbox = load_plugin("plugins/filter/glassbox.py")

# What tasks/validate.yml's probe prints on a converged host (nftables installed, rule set and
# unit in place, unit running) reached over SSH, with ufw present.
PROBE = """\
value SSH_CONNECTION|192.0.2.10 51234 198.51.100.5 22
value ufw|/usr/sbin/ufw
pkg ii |nftables|1.1.3-1
path /etc/glassbox|directory|755|root|root
path /etc/glassbox/firewall.nft|regular file|644|root|root
path /etc/systemd/system/glassbox-firewall.service|regular file|600|root|adm
sha1 0a4d55a8d778e5022fab701977c5d840bbc486d0  /etc/glassbox/firewall.nft
sha1 5b9e2f6a1c1f8d3e5c0b4a7d9e8f7a6b5c4d3e2f  /etc/systemd/system/glassbox-firewall.service
unit active|enabled
"""


def test_the_probe_keeps_its_values_for_the_guard_and_ufw():
    now = glassbox.host_probe(PROBE)
    assert now["values"] == {
        "SSH_CONNECTION": "192.0.2.10 51234 198.51.100.5 22",
        "ufw": "/usr/sbin/ufw",
    }
    assert "nftables" in now["installed_specs"]
    assert now["unit"] == ["active", "enabled"]
    # the guard reads the live connection out of the probe
    assert fw.firewall_problems(settings(ssh_ports=[2222]), now["values"]["SSH_CONNECTION"])


def test_the_probe_of_a_console_run_without_ufw_has_empty_values():
    now = glassbox.host_probe("value SSH_CONNECTION|\nvalue ufw|\nunit inactive|\n")
    assert now["values"] == {"SSH_CONNECTION": "", "ufw": ""}
    assert fw.firewall_problems(GOOD, now["values"]["SSH_CONNECTION"]) == []


def test_probed_file_gives_file_differs_what_the_probe_read():
    now = glassbox.host_probe(PROBE)
    assert glassbox.probed_file(now, "/etc/glassbox/firewall.nft") == {
        "checksum": "0a4d55a8d778e5022fab701977c5d840bbc486d0",
        "mode": "644",
        "pw_name": "root",
        "gr_name": "root",
    }
    unit = glassbox.probed_file(now, "/etc/systemd/system/glassbox-firewall.service")
    # a mode or group that drifted makes the file differ even with the right content
    assert glassbox.file_differs(unit, "", {"mode": "0644"})


@pytest.mark.parametrize(
    "probe",
    [
        "",  # the file is missing
        "path /etc/glassbox/firewall.nft|directory|755|root|root\n",  # not a file
        # stat saw it, sha1sum could not read it
        "path /etc/glassbox/firewall.nft|regular file|600|root|root\n",
    ],
)
def test_probed_file_is_empty_unless_a_readable_regular_file(probe):
    now = glassbox.host_probe(probe)
    assert glassbox.probed_file(now, "/etc/glassbox/firewall.nft") == {}
    assert glassbox.file_differs({}, "anything", {"mode": "0644"})
