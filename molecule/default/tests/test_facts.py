"""The OS facts preflight reads in its one raw call are the setup module's, on Debian 13.

glassbox's playbooks gather no facts: preflight sets the ones the roles read from os-release,
/etc/debian_version and uname (roles/preflight/filter_plugins/preflight_os.py).
tests/test_host_roles.py compares them with setup on the test machine (Debian 12); this does
the same on the converged target.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

SCENARIO = Path(__file__).resolve().parents[1]
# The facts preflight sets (its set_fact in tasks/os_facts.yml), every one compared.
KEYS = [
    key
    for key in yaml.safe_load(
        (SCENARIO.parents[1] / "roles/preflight/tasks/os_facts.yml").read_text()
    )[0]["ansible.builtin.set_fact"]
    if key != "cacheable"
]


def _keep(name: str, out: str) -> dict:
    return {
        "name": f"Keep the {name} facts",
        "delegate_to": "localhost",
        "ansible.builtin.copy": {
            # module_setup: a fact only the setup module sets (it tells which path ran)
            "content": "{{ dict(keys | zip(keys | map('extract', ansible_facts)))"
            " | combine({'by_setup': 'module_setup' in ansible_facts}) | to_json }}",
            "dest": f"{out}/{name}.json",
            "mode": "0600",
        },
        "vars": {"keys": KEYS},
    }


def test_preflight_sets_the_facts_setup_would(tmp_path):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "run through `molecule verify`: MOLECULE_INVENTORY_FILE is not set"
    plays = [
        {
            "name": "Read the facts as the playbooks do",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Read them with preflight",
                    "ansible.builtin.include_role": {"name": "preflight", "tasks_from": "facts"},
                },
                _keep("preflight", str(tmp_path)),
            ],
        },
        {
            "name": "Gather them with setup",
            "hosts": "all",
            "gather_facts": True,
            "gather_subset": ["min"],
            "tasks": [_keep("setup", str(tmp_path))],
        },
    ]
    (tmp_path / "facts.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    run = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(tmp_path / "facts.yml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    read = json.loads((tmp_path / "preflight.json").read_text())
    setup = json.loads((tmp_path / "setup.json").read_text())
    # set by the raw read, not by the setup fallback; then setup's own
    assert (read.pop("by_setup"), setup.pop("by_setup")) == (False, True)
    assert read["distribution"] == "Debian"
    assert read == setup
