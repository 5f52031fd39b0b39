"""Run the real langfuse role on this machine (local connection, no Docker), through
tests/ansible_run.py.

Every scenario is one inventory host with its own project directory and secrets file under
tmp_path, so one ansible-playbook run renders them all.
"""

from __future__ import annotations

from pathlib import Path

from tests.ansible_run import PlaybookRun, local_inventory, play

# The langfuse role as the real-stack harness and a deploy use it without Docker: its checks,
# then its render (secrets, compose_project), then the published langfuse_connection fact.
RENDER_TASKS = [
    {
        "name": f"langfuse {entry}",
        "ansible.builtin.include_role": {"name": "langfuse", "tasks_from": entry},
    }
    for entry in ("validate", "render", "connection")
]


def run_playbook(
    tmp_path: Path, hosts: dict[str, dict], tasks: list[dict]
) -> tuple[int, dict, str]:
    """Run the tasks on every host (each isolated under tmp_path/<host>, all in the
    observability group); return the exit code, the JSON report and the raw output."""
    host_vars = {
        name: {
            # Plain HTTP unless a case turns the TLS proxy on (it then needs the proxy settings).
            "glassbox_tls": False,
            "langfuse_project_dir": str(tmp_path / name / "project"),
            "langfuse_secrets_file": str(tmp_path / name / "etc" / "secrets.json"),
            **overrides,
        }
        for name, overrides in hosts.items()
    }
    plays = [
        {
            "name": "Langfuse role under test",
            "hosts": "observability",
            "gather_facts": False,
            "tasks": tasks,
        }
    ]
    inventory = local_inventory(host_vars, groups={"observability": list(host_vars)})
    run = play(tmp_path / "run", plays, inventory=inventory, timeout=900)
    return run.rc, run.report or {}, run.output


def host_failures(report: dict, host: str) -> list[str]:
    """Every failure message of one host (loop items included), in task order."""
    return PlaybookRun(0, "", "", report).failures(host)


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
