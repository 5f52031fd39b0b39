"""glassbox_prefork's garbage-collector step, in this process (no Ansible run).

tests/test_ansible_cfg.py proves its plugin loading in real runs; README (Benchmarks) gives
the no-op run's time with and without the freeze.
"""

from __future__ import annotations

import gc

from tests.unit import load_plugin

prefork = load_plugin("plugins/callback/glassbox_prefork.py")


def test_each_task_start_freezes_what_the_main_process_holds():
    callback = prefork.CallbackModule()
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        callback.v2_playbook_on_task_start(task=None, is_conditional=False)
        frozen = gc.get_freeze_count()
        # everything alive then (pytest's and ansible-core's objects) is out of the collector's
        # generations: what it still tracks is what was made after the freeze
        assert frozen > 10_000, frozen
        assert len(gc.get_objects()) < frozen // 10
    finally:
        gc.unfreeze()
