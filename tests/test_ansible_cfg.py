"""The project's ansible.cfg takes effect for every connection the project uses."""

from __future__ import annotations

from tests.ansible_run import REPO, ansible_tool, play


def effective_config() -> str:
    return ansible_tool("ansible-config", "dump", "--only-changed", "--type", "all")


def test_pipelining_is_on_for_the_docker_and_local_connections():
    # The global setting is what the docker (Molecule) and local (inventories/local) connection
    # plugins read; an `[ssh_connection]` entry alone only reaches ssh.
    lines = [line for line in effective_config().splitlines() if "PIPELINING" in line]
    assert any(line.startswith("ANSIBLE_PIPELINING(") and "= True" in line for line in lines), lines


# A filter and a connection plugin that note, when Python loads them, which process did it.
_MARKING_FILTER = """
import os
with open(os.environ["GLASSBOX_LOAD_LOG"], "a") as log:
    log.write(f"filter {os.getpid()}\\n")

class FilterModule:
    def filters(self):
        return {"glassbox_marked": lambda value: value}
"""
_MARKING_CONNECTION = '''
import os
from ansible.plugins.connection.local import Connection as LocalConnection

DOCUMENTATION = """
    name: marking
    short_description: the local connection, noting each process that loads it
    description: [The local connection.]
    author: glassbox tests
"""

with open(os.environ["GLASSBOX_LOAD_LOG"], "a") as log:
    log.write(f"connection {os.getpid()}\\n")

class Connection(LocalConnection):
    transport = "marking"
'''


def _plugin_loads(tmp_path, *, callbacks: str) -> dict[str, list[str]]:
    """Run five templating tasks on one host over the marking connection (from a collection,
    as community.docker's is); which processes loaded the marking filter and connection.
    `callbacks` is the callback plugin path."""
    collection = tmp_path / "ansible_collections" / "glassboxtest" / "marking"
    connections = collection / "plugins" / "connection"
    connections.mkdir(parents=True)
    (connections / "marking.py").write_text(_MARKING_CONNECTION)
    (collection / "galaxy.yml").write_text(
        "namespace: glassboxtest\nname: marking\nversion: 1.0.0\n"
        "readme: README.md\nauthors: [tests]\n"
    )
    (tmp_path / "filter").mkdir()
    (tmp_path / "filter" / "marking_filter.py").write_text(_MARKING_FILTER)
    log = tmp_path / "loads.log"
    tasks = [
        {"name": f"task {n}", "ansible.builtin.debug": {"msg": f"{{{{ {n} | glassbox_marked }}}}"}}
        for n in range(5)
    ]
    run = play(
        tmp_path,
        [{"name": "five tasks", "hosts": "all", "gather_facts": False, "tasks": tasks}],
        inventory={"all": {"hosts": {"h": {"ansible_connection": "glassboxtest.marking.marking"}}}},
        env={
            "GLASSBOX_LOAD_LOG": str(log),
            "ANSIBLE_FILTER_PLUGINS": str(tmp_path / "filter"),
            "ANSIBLE_COLLECTIONS_PATH": str(tmp_path),
            "ANSIBLE_CALLBACK_PLUGINS": callbacks,
        },
    )
    assert run.rc == 0, run.output
    loads: dict[str, list[str]] = {"filter": [], "connection": []}
    for line in log.read_text().splitlines():
        kind, pid = line.split()
        loads[kind].append(pid)
    return loads


def test_the_prefork_callback_loads_plugins_once_for_all_workers(tmp_path):
    # glassbox_prefork (plugins/callback, on through ansible.cfg's callback_plugins and without
    # callbacks_enabled): the filter is loaded once, by the main process, before the first
    # fork; the connection by the first task's worker and then once by the main process.
    # (ansible-core itself loads the connection plugins outside collections in the main process.)
    loads = _plugin_loads(tmp_path / "with", callbacks=str(REPO / "plugins" / "callback"))
    assert len(loads["filter"]) == 1, loads
    assert len(loads["connection"]) <= 2, loads
    # Without it (an empty callback path), each task's worker loads both again: the figure the
    # assertions above would see if the callback stopped working.
    loads = _plugin_loads(tmp_path / "without", callbacks=str(tmp_path / "none"))
    assert len(set(loads["filter"])) == 5, loads
    assert len(set(loads["connection"])) == 5, loads
