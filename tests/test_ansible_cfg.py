"""The project's ansible.cfg takes effect for every connection the project uses."""

from __future__ import annotations

import subprocess

from tests.ansible_run import BIN, REPO, ansible_env


def effective_config() -> str:
    proc = subprocess.run(
        [str(BIN / "ansible-config"), "dump", "--only-changed", "--type", "all"],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout


def test_pipelining_is_on_for_the_docker_and_local_connections():
    # The global setting is what the docker (Molecule) and local (inventories/local) connection
    # plugins read; an `[ssh_connection]` entry alone only reaches ssh.
    lines = [line for line in effective_config().splitlines() if "PIPELINING" in line]
    assert any(line.startswith("ANSIBLE_PIPELINING(") and "= True" in line for line in lines), lines
