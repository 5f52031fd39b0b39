"""docker_engine's Compose check, run for real against stand-in `docker` commands.

Docker's apt repository ships docker-compose-plugin 5.x (Compose v5.0.0); the role must accept
any Compose at or above what community.docker's compose modules need, and refuse older ones.
One ansible-playbook run: one inventory host per version string, each with its own fake CLI.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.ansible_run import REPO, local_inventory, play

COLLECTION = (
    Path(sys.executable).parent.parent
    / "lib"
    / f"python{sys.version_info.major}.{sys.version_info.minor}"
    / "site-packages/ansible_collections/community/docker/plugins/module_utils/compose_v2.py"
)

# host -> (what `docker compose version --short` prints, exit code, accepted?)
CASES: dict[str, tuple[str, int, bool]] = {
    "compose_v5": ("5.0.2", 0, True),
    "compose_v5_prefixed": ("v5.1.0", 0, True),
    "compose_2_40": ("2.40.3", 0, True),
    "compose_at_minimum": ("2.18.0", 0, True),
    # what Debian 13's docker-compose 2.26.1-4 answers (measured in a trixie container)
    "debian_build": ("2.26.1-4", 0, True),
    "compose_too_old": ("2.17.3", 0, False),
    "compose_dev": ("dev", 0, False),
    "no_compose_plugin": ("docker: 'compose' is not a docker command.", 1, False),
}


def test_minimum_is_the_collections_own():
    # The floor in vars/main.yml must follow community.docker's MINIMUM_COMPOSE_VERSION.
    source = COLLECTION.read_text()
    (minimum,) = re.findall(r"^MINIMUM_COMPOSE_VERSION = '([0-9.]+)'", source, re.M)
    role_vars = yaml.safe_load((REPO / "roles/docker_engine/vars/main.yml").read_text())
    assert role_vars["__docker_engine_compose_min"] == minimum


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compose-check")
    hosts = {}
    for name, (answer, rc, _) in CASES.items():
        bindir = tmp / name
        bindir.mkdir()
        fake = bindir / "docker"
        fake.write_text(f"#!/bin/sh\necho {json.dumps(answer)}\nexit {rc}\n")
        fake.chmod(0o755)
        hosts[name] = {"fake_bin": str(bindir)}
    plays = [
        {
            "name": "compose check",
            "hosts": "all",
            "gather_facts": False,
            "environment": {"PATH": "{{ fake_bin }}:" + os.environ.get("PATH", "")},
            "tasks": [
                {
                    "name": "run the role's check",
                    "ansible.builtin.include_role": {
                        "name": "docker_engine",
                        "tasks_from": "compose_check",
                    },
                }
            ],
        }
    ]
    run = play(tmp, plays, inventory=local_inventory(hosts, groups={}), forks=8, timeout=300)
    return {"stats": run.stats, "failures": {name: run.failures(name) for name in hosts}}


@pytest.mark.parametrize("case", CASES)
def test_compose_version_is_compared_not_matched(outcome, case):
    accepted = CASES[case][2]
    stats = outcome["stats"][case]
    assert (stats["failures"] == 0) == accepted, stats
    if not accepted:
        messages = outcome["failures"][case]
        assert any("2.18.0 or newer" in m for m in messages), messages
