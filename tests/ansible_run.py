"""Run real ansible-playbook against localhost from tests, with the repo's roles and config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")


def ansible_env(tmp_path: Path | None = None, **overrides: str) -> dict[str, str]:
    """Environment for an ansible-playbook run from a test: this repo's config and roles, the
    venv's tools first on PATH, no colour, JSON-formatted results, a private temp directory."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if tmp_path is not None:
        env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / ".ansible-tmp")
    env.update(overrides)
    return env


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_playbook(
    tmp_path: Path,
    plays: list[dict],
    extra_vars: dict | None = None,
    *,
    check: bool = False,
    groups: tuple[str, ...] = ("inference", "observability"),
    timeout: int = 300,
) -> PlaybookRun:
    """Write `plays` to a playbook in tmp_path and run it on localhost (local connection)."""
    inventory = {
        "all": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": sys.executable,
                }
            },
            "children": {group: {"hosts": {"localhost": None}} for group in groups},
        }
    }
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    argv = [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "hosts.yml"), "play.yml"]
    if extra_vars:
        (tmp_path / "extra.json").write_text(json.dumps(extra_vars))
        argv += ["-e", f"@{tmp_path / 'extra.json'}"]
    if check:
        argv.append("--check")
    proc = subprocess.run(
        argv,
        cwd=tmp_path,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr)


def role_play(
    role: str,
    role_vars: dict | None = None,
    *,
    tasks_from: str = "main",
    gather_facts: bool = True,
) -> list[dict]:
    """A one-play playbook that includes `role` (its argument spec is validated first)."""
    return [
        {
            "name": f"exercise {role}",
            "hosts": "localhost",
            "gather_facts": gather_facts,
            "tasks": [
                {
                    "name": f"include {role}",
                    "ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from},
                    "vars": role_vars or {},
                }
            ],
        }
    ]
