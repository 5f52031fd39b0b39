"""The one way tests run Ansible: real ansible-playbook with the repo's config and roles.

- `local_inventory()` builds a multi-host inventory whose hosts all use the local connection
  (one host per test case lets one ansible-playbook run cover a whole matrix);
- `play()` runs a playbook (a file, or plays given as data) and returns a `PlaybookRun` whose
  `report` is the JSON callback's, with `failures()` that keeps loop-item failures and
  `changed()` / `stats` per host;
- `role_play()` is a one-play playbook that includes a role.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = str(BIN / "ansible-playbook")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
DEFAULT_GROUPS = ("inference", "observability")


def ansible_env(tmp_path: Path | None = None, **overrides: str) -> dict[str, str]:
    """Environment for an Ansible run from a test: this repo's config and roles, the venv's tools
    first on PATH, no colour, a private temp directory."""
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


def local_inventory(
    hosts: dict[str, dict[str, Any]] | None = None,
    groups: dict[str, Iterable[str]] | None = None,
    common: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An inventory of local-connection hosts. Without `hosts`: localhost alone. Without
    `groups`: every host in both glassbox groups (inference, observability)."""
    hosts = hosts if hosts is not None else {"localhost": {}}
    if groups is None:
        groups = {key: list(hosts) for key in DEFAULT_GROUPS}
    return {
        "all": {
            "vars": {**LOCAL, **(common or {})},
            "hosts": {name: dict(host_vars) for name, host_vars in hosts.items()},
            "children": {
                group: {"hosts": dict.fromkeys(members)} for group, members in groups.items()
            },
        }
    }


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    report: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        assert self.report is not None, "run with report=True to read stats"
        return self.report["stats"]

    def changed(self, host: str) -> int:
        return self.stats[host]["changed"]

    def failures(self, host: str) -> list[str]:
        """Every failure message of one host in task order, loop items included."""
        assert self.report is not None, "run with report=True to read failures"
        messages = []
        for each_play in self.report["plays"]:
            for task in each_play["tasks"]:
                result = task["hosts"].get(host)
                if not result or not result.get("failed"):
                    continue
                messages.append(str(result.get("msg", "")))
                messages.extend(
                    str(item.get("msg", ""))
                    for item in result.get("results", [])
                    if item.get("failed")
                )
        return messages

    def failed_hosts(self) -> set[str]:
        return {host for host, stats in self.stats.items() if stats["failures"]}


def play(
    tmp_path: Path,
    playbook: Path | str | list[dict[str, Any]],
    *,
    inventory: dict[str, Any] | Path | None = None,
    extra_vars: dict[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    tags: Iterable[str] = (),
    limit: str | None = None,
    args: Iterable[str] = (),
    report: bool = True,
    forks: int = 10,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    drop_env: Iterable[str] = (),
    path: Iterable[Path] = (),
    timeout: int = 600,
) -> PlaybookRun:
    """Run ansible-playbook. `playbook` is a path (relative paths are the repo's) or plays as
    data; `inventory` an inventory as data (local_inventory()) or a path; with `report` the
    JSON callback's result is parsed into PlaybookRun.report. `drop_env` names inherited
    variables the run must not see; `path` directories (stand-in tools) go first on PATH; `args`
    are further ansible-playbook options."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if isinstance(playbook, list):
        playbook_path = tmp_path / "play.yml"
        playbook_path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    else:
        playbook_path = REPO / playbook
    if inventory is None:
        inventory = local_inventory()
    if isinstance(inventory, dict):
        inventory_path = tmp_path / "hosts.yml"
        inventory_path.write_text(yaml.safe_dump(inventory))
    else:
        inventory_path = inventory
    argv = [ANSIBLE_PLAYBOOK, "-i", str(inventory_path), str(playbook_path)]
    if extra_vars:
        (tmp_path / "extra.json").write_text(json.dumps(extra_vars))
        argv += ["-e", f"@{tmp_path / 'extra.json'}"]
    argv += ["--check"] * check + ["--diff"] * diff
    argv += ["--tags", ",".join(tags)] if tags else []
    argv += ["--limit", limit] if limit else []
    argv += list(args)
    settings = {"ANSIBLE_FORKS": str(forks)}
    if report:
        settings["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.json"
    run_env = ansible_env(tmp_path, **settings, **(env or {}))
    for name in drop_env:
        run_env.pop(name, None)
    run_env["PATH"] = os.pathsep.join([*map(str, path), run_env["PATH"]])
    proc = subprocess.run(
        argv,
        cwd=cwd or tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    parsed = None
    if report:
        start = proc.stdout.find("{")
        assert start >= 0, f"no JSON from ansible-playbook:\n{proc.stdout}\n{proc.stderr}"
        parsed = json.loads(proc.stdout[start:])
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, parsed)


def ansible_tool(tool: str, *args: str, timeout: int = 120) -> str:
    """Another Ansible command (ansible-config, ansible-inventory) with the same environment;
    its stdout. A failure raises with the command's output."""
    proc = subprocess.run(
        [str(BIN / tool), *args],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"{tool} {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def run_playbook(
    tmp_path: Path,
    plays: list[dict],
    extra_vars: dict | None = None,
    *,
    check: bool = False,
    groups: tuple[str, ...] = DEFAULT_GROUPS,
    timeout: int = 300,
) -> PlaybookRun:
    """`plays` on localhost (local connection) with the human-readable output."""
    inventory = local_inventory(groups={key: ["localhost"] for key in groups})
    return play(
        tmp_path,
        plays,
        inventory=inventory,
        extra_vars=extra_vars,
        check=check,
        report=False,
        timeout=timeout,
    )


def role_play(
    role: str,
    role_vars: dict | None = None,
    *,
    tasks_from: str = "main",
    gather_facts: bool = True,
    hosts: str = "localhost",
) -> list[dict]:
    """A one-play playbook that includes `role` (its argument spec is validated first)."""
    return [
        {
            "name": f"exercise {role}",
            "hosts": hosts,
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
