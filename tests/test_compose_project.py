"""compose_project's render on this machine: a converged project skips the template module for
every file that already matches (one `find` instead of a stat and a file call per file), and a
file whose content, mode or owner drifted is rendered again, alone."""

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


def rendered(run: PlaybookRun, task_name: str) -> int:
    """How many files the template module wrote in one task (the secret task's items are
    censored by no_log down to `changed`, so they are counted, not named)."""
    for task in run.report["plays"][0]["tasks"]:
        if task["task"]["name"].endswith(task_name):
            result = task["hosts"]["localhost"]
            if result.get("skipped"):
                return 0
            return sum(1 for item in result.get("results", []) if item.get("changed"))
    raise AssertionError(f"no task {task_name!r}")


def skipped(run: PlaybookRun, task_name: str) -> bool:
    """Whether the template module was not called at all in that task (every item skipped)."""
    for task in run.report["plays"][0]["tasks"]:
        if task["task"]["name"].endswith(task_name):
            return bool(task["hosts"]["localhost"].get("skipped"))
    raise AssertionError(f"no task {task_name!r}")


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


def test_a_converged_project_skips_the_template_module(runs):
    _, _, again, _ = runs
    assert again.changed("localhost") == 0
    assert skipped(again, SECRET_TASK)
    assert skipped(again, OTHER_TASK)
    # the one find also shows the subdirectory is right: no file module call for it either
    assert skipped(again, SUBDIR_TASK)


def test_drift_in_mode_or_content_is_rendered_again_alone(runs):
    tmp, _, _, drifted = runs
    assert rendered(drifted, SECRET_TASK) == 1  # mode 0644 -> 0600
    assert rendered(drifted, OTHER_TASK) == 1  # tag one -> two
    assert os.stat(tmp / "project" / "env" / "app.env").st_mode & 0o777 == 0o600
    assert "demo:two" in (tmp / "project" / "compose.yaml").read_text()
    assert os.stat(tmp / "project" / "env").st_mode & 0o777 == 0o700  # 0755 -> 0700
    assert drifted.changed("localhost") == 3  # the subdirectory and the two render tasks
