"""nvidia_container_toolkit's CDI step on this machine, nvidia-ctk and systemctl stood in for."""

from __future__ import annotations

import os
import stat

import pytest

from tests.ansible_run import play, role_play

pytestmark = pytest.mark.roles


def _stand_in(path, body):
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_docker_is_ordered_after_the_cdi_refresh_and_a_rerun_changes_nothing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl.calls"
    _stand_in(bin_dir / "nvidia-ctk", 'echo "INFO Found 1 CDI devices"; echo nvidia.com/gpu=all')
    _stand_in(bin_dir / "systemctl", f'echo "$@" >> {calls}')
    dropin = tmp_path / "docker.service.d" / "10-nvidia-cdi-refresh.conf"
    plays = role_play("nvidia_container_toolkit", tasks_from="cdi", gather_facts=False)
    extra = {"__nvidia_container_toolkit_docker_dropin": str(dropin)}
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    first = play(tmp_path / "first", plays, extra_vars=extra, env=env)
    assert first.rc == 0, first.output
    text = dropin.read_text()
    assert "Wants=nvidia-cdi-refresh.service" in text
    assert "After=nvidia-cdi-refresh.service" in text
    assert "daemon-reload" in calls.read_text()

    second = play(tmp_path / "second", plays, extra_vars=extra, env=env)
    assert second.rc == 0, second.output
    assert second.changed("localhost") == 0
    assert calls.read_text().count("daemon-reload") == 1
