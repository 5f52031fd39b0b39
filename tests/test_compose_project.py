"""compose_project's render on this machine: a converged project runs the probe and the plan and
nothing else (no template, file or loop task is even evaluated), and a file whose content, mode
or owner drifted is rendered again, alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ansible_run import PlaybookRun, local_inventory, play

pytestmark = pytest.mark.roles

SECRET_TASK = "Render the files that hold secrets (no diff, never printed)"  # noqa: S105 - a task name
OTHER_TASK = "Render the other files"
SUBDIR_TASK = "Create the subdirectories of rendered files (root only)"


def small_project(tmp: Path, tag: str = "one") -> dict:
    """The vars of a two-file project under tmp (a secret env file and compose.yaml), its
    templates written: what this file's render and the configured tests hand compose_project."""
    templates = tmp / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "app.env.j2").write_text("TOKEN={{ token }}\n")
    (templates / "compose.yaml.j2").write_text("services:\n  app:\n    image: demo:{{ tag }}\n")
    return {
        "compose_project_name": "demo",
        "compose_project_dir": str(tmp / "project"),
        "compose_project_files": [
            {
                "src": str(templates / "app.env.j2"),
                "dest": "env/app.env",
                "mode": "0600",
                "secret": True,
            },
            {"src": str(templates / "compose.yaml.j2"), "dest": "compose.yaml"},
        ],
        "token": "s3cret-token",
        "tag": tag,
    }


def render(tmp: Path, value: str = "one") -> PlaybookRun:
    plays = [
        {
            "name": "Render a small project",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Render",
                    "ansible.builtin.include_role": {
                        "name": "compose_project",
                        "tasks_from": "render",
                    },
                    "vars": small_project(tmp, value),
                }
            ],
        }
    ]
    run = play(tmp / "run", plays, inventory=local_inventory())
    assert run.rc == 0, run.output
    return run


def role_tasks(run: PlaybookRun) -> list[str]:
    """The names of the compose_project tasks the run evaluated (run or skipped)."""
    return [
        task["task"]["name"]
        for task in run.report["plays"][0]["tasks"]
        if task["task"]["name"].startswith("compose_project : ")
    ]


def rendered(run: PlaybookRun, task_name: str) -> int:
    """How many files the template module wrote in one task (the secret task's items are
    censored by no_log down to `changed`, so they are counted, not named); 0 when the task
    was not evaluated at all (the plan found nothing to do)."""
    for task in run.report["plays"][0]["tasks"]:
        if task["task"]["name"].endswith(task_name):
            result = task["hosts"]["localhost"]
            if result.get("skipped"):
                return 0
            return sum(1 for item in result.get("results", []) if item.get("changed"))
    return 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compose-project")
    first = render(tmp)
    again = render(tmp)
    (tmp / "project" / "env" / "app.env").chmod(0o644)
    (tmp / "project" / "env").chmod(0o755)
    drifted = render(tmp, value="two")
    return tmp, first, again, drifted


def test_a_first_render_writes_every_file(runs):
    tmp, first, _, _ = runs
    assert rendered(first, SECRET_TASK) == 1
    assert rendered(first, OTHER_TASK) == 1
    assert (tmp / "project" / "env" / "app.env").read_text() == "TOKEN=s3cret-token\n"
    assert "s3cret-token" not in first.output


def test_a_converged_project_runs_the_probe_and_the_plan_only(runs):
    _, _, again, _ = runs
    assert again.changed("localhost") == 0
    names = role_tasks(again)
    # no render, subdirectory or removal task is evaluated, not even to skip its items: the
    # plan found nothing, and the include of the changes is skipped as a whole
    assert not [n for n in names if n.endswith((SECRET_TASK, OTHER_TASK, SUBDIR_TASK))], names
    assert len(names) == 4, names  # argument spec, probe, plan, the skipped include


def test_drift_in_mode_or_content_is_rendered_again_alone(runs):
    tmp, _, _, drifted = runs
    assert rendered(drifted, SECRET_TASK) == 1  # mode 0644 -> 0600
    assert rendered(drifted, OTHER_TASK) == 1  # tag one -> two
    assert os.stat(tmp / "project" / "env" / "app.env").st_mode & 0o777 == 0o600
    assert "demo:two" in (tmp / "project" / "compose.yaml").read_text()
    assert os.stat(tmp / "project" / "env").st_mode & 0o777 == 0o700  # 0755 -> 0700
    assert drifted.changed("localhost") == 3  # the subdirectory and the two render tasks
