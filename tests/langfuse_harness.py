"""Run the real langfuse role with ansible-playbook on this machine (local connection, no Docker).

Every scenario is one inventory host with its own project directory and secrets file under
tmp_path, so one ansible-playbook run renders them all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.ansible_run import ANSIBLE_PLAYBOOK, ansible_env

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "langfuse"


def write_inventory(tmp_path: Path, hosts: dict[str, dict]) -> Path:
    """An inventory with every host in the observability group, each isolated under tmp_path."""
    inv_dir = tmp_path / "inventory"
    inv_dir.mkdir()
    host_vars = {}
    for name, overrides in hosts.items():
        host_vars[name] = {
            "langfuse_project_dir": str(tmp_path / name / "project"),
            "langfuse_secrets_file": str(tmp_path / name / "etc" / "secrets.json"),
            **overrides,
        }
    inventory = {
        "all": {
            "children": {"observability": {"hosts": host_vars}},
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
            },
        }
    }
    path = inv_dir / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def run_playbook(
    tmp_path: Path, hosts: dict[str, dict], tasks: list[dict]
) -> tuple[int, dict, str]:
    """Run the tasks on every host; return the exit code, the JSON report and the raw output."""
    inventory = write_inventory(tmp_path, hosts)
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Langfuse role under test",
                    "hosts": "observability",
                    "gather_facts": False,
                    "tasks": tasks,
                }
            ]
        )
    )
    env = ansible_env(tmp_path, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_FORKS="10")
    proc = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
        check=False,
    )
    start = proc.stdout.find("{")
    assert start >= 0, f"no JSON from ansible-playbook:\n{proc.stdout}\n{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout[start:]), proc.stdout + proc.stderr


def host_failures(report: dict, host: str) -> list[str]:
    """Every failure message of one host (loop items included), in task order."""
    messages = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if not result or not result.get("failed"):
                continue
            messages.append(str(result.get("msg", "")))
            messages.extend(
                str(item.get("msg", "")) for item in result.get("results", []) if item.get("failed")
            )
    return messages


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, exactly as Compose reads an env_file (no quote handling on our side)."""
    env = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: line without '=': {line!r}"
        assert key not in env, f"{path}: {key} set twice"
        env[key] = value
    return env
