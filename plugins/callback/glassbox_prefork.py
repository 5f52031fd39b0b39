"""Load, in ansible-playbook's main process, the plugins every forked worker would load again.

ansible-core runs each task in a worker process forked from the main process. A worker loads
what the main process has not: every Jinja filter and test plugin file (ansible.builtin's,
plugins/filter here, each role's filter_plugins) as soon as it templates anything, and a
connection plugin from a collection (community.docker's, for Molecule's targets), whose
documentation (YAML) it parses for the plugin's settings. ansible-core's main process loads the
connection plugins outside collections before the first fork, but never these; so each of a
run's ~150 tasks paid for those loads again (and, without a bytecode cache, for compiling the
plugin files). This callback loads them in the main process; the forks that follow inherit them.
Before each task it also moves every object the main process holds into the garbage collector's
permanent generation (gc.freeze(), the preparation for fork() that Python's gc documentation
describes): the collections of the main process and of each worker then no longer walk the
~100,000 objects that live for the whole run (the loaded playbook, roles and inventory), and a
worker no longer writes to, and so copies, the memory pages that hold them. Cyclic garbage the
main process made before a task is kept until it exits (a few thousand objects per play,
measured); reference counting frees the rest as before.
It prints nothing and changes no result. README.md (Benchmarks) gives the no-op run's time with
and without it.
"""

from __future__ import annotations

import gc

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import connection_loader, filter_loader, test_loader

DOCUMENTATION = """
    name: glassbox_prefork
    type: aggregate
    short_description: load Jinja and connection plugins once, before the workers fork
    description:
        - Before each task is queued, loads the Jinja filter and test plugins in the main process
          (at once when they are loaded already; again after a role adds its filter_plugins).
        - When a host's first task starts, loads the host's connection plugin class.
        - Before each task is queued, freezes the main process's objects (gc.freeze()).
        - Output and results are untouched.
"""


class CallbackModule(CallbackBase):
    """Warms ansible-core's plugin loaders in the main process; prints nothing."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "glassbox_prefork"
    # Runs without being listed in callbacks_enabled: tests and Molecule set their own list.
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self) -> None:
        super().__init__()
        self._connections: set[str] = set()

    def v2_playbook_on_task_start(self, task, is_conditional):
        # all() fills a loader's cache and returns at once while it is filled; a role loaded by
        # include_role adds its filter_plugins directory and empties the cache, and the next
        # call loads only what is new (modules already loaded stay in sys.modules).
        for loader in (filter_loader, test_loader):
            for _plugin in loader.all():
                pass
        # The worker for this task forks next: what exists now stays out of every collection.
        gc.freeze()

    def v2_runner_on_start(self, host, task):
        # The connection named in inventory (host vars over group vars); a templated or unknown
        # name is left to the worker, as before. get() returns None for a name it cannot find.
        name = host.vars.get("ansible_connection")
        if name is None:
            for group in sorted(host.get_groups(), key=lambda g: g.depth, reverse=True):
                name = group.get_vars().get("ansible_connection")
                if name is not None:
                    break
        if isinstance(name, str) and name and "{" not in name and name not in self._connections:
            self._connections.add(name)
            connection_loader.get(name, class_only=True)
