"""The project's ansible.cfg takes effect for every connection the project uses."""

from __future__ import annotations

from tests.ansible_run import ansible_tool


def effective_config() -> str:
    return ansible_tool("ansible-config", "dump", "--only-changed", "--type", "all")


def test_pipelining_is_on_for_the_docker_and_local_connections():
    # The global setting is what the docker (Molecule) and local (inventories/local) connection
    # plugins read; an `[ssh_connection]` entry alone only reaches ssh.
    lines = [line for line in effective_config().splitlines() if "PIPELINING" in line]
    assert any(line.startswith("ANSIBLE_PIPELINING(") and "= True" in line for line in lines), lines
