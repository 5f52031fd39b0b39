"""compose_project in state `configured` on this machine, with stand-ins for the docker CLI and
the Docker API (tests/fake_docker_api.py): one probe reads the project, and on a converged
project nothing else reaches Docker. `docker compose config` runs only when the render differs
from the last one that passed it (a failed validation is validated again on the next run, not
forgotten); a volume that disappeared is created again, alone; a volume is never deleted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ansible_run import PlaybookRun, local_inventory, play
from tests.fake_docker_api import FakeDockerAPI
from tests.test_compose_project import role_tasks, small_project

pytestmark = pytest.mark.roles

VALIDATE = "Validate the project with docker compose config"
VOLUMES = "Create the named volumes, labelled as Compose's own"

# Answers what `configured` asks: Compose's version, which volumes exist (from the stand-in
# API, as the real CLI would), and `compose config --quiet` (fails while $FAIL_CONFIG exists).
FAKE_DOCKER = """#!/usr/bin/env python3
import http.client, json, os, socket, sys

args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")


class Unix(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(os.environ["DOCKER_HOST"].removeprefix("unix://"))


if args[:3] == ["compose", "version", "--short"]:
    print("2.40.3")
elif args[:3] == ["inspect", "--type", "volume"]:
    rc = 0
    for name in args[5:]:
        conn = Unix("docker")
        conn.request("GET", "/volumes/" + name)
        reply = conn.getresponse()
        if reply.status == 200:
            print(args[4].replace("{{.Name}}", json.load(reply)["Name"]))
        else:
            print("Error: no such volume: " + name, file=sys.stderr)
            rc = 1
    sys.exit(rc)
elif args[0] == "compose" and args[-2:] == ["config", "--quiet"]:
    sys.exit(3 if os.path.exists(os.environ["FAIL_CONFIG"]) else 0)
else:
    print("fake docker: not supported here: " + " ".join(args), file=sys.stderr)
    sys.exit(1)
"""


def configure(tmp: Path, api: FakeDockerAPI, label: str, tag: str = "one") -> PlaybookRun:
    plays = [
        {
            "name": "Configure a small project",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Configure",
                    "ansible.builtin.include_role": {"name": "compose_project"},
                    "vars": {
                        **small_project(tmp, tag),
                        "compose_project_state": "configured",
                        "compose_project_volumes": ["data", "cache"],
                    },
                }
            ],
        }
    ]
    (tmp / "docker.log").write_text("")
    api.requests.clear()
    return play(
        tmp / label,
        plays,
        inventory=local_inventory(),
        env={
            "DOCKER_HOST": api.docker_host,
            "FAKE_DOCKER_LOG": str(tmp / "docker.log"),
            "FAIL_CONFIG": str(tmp / "fail-config"),
        },
        path=[tmp / "bin"],
    )


def validated(tmp: Path) -> bool:
    return any(
        line.endswith("config --quiet") for line in (tmp / "docker.log").read_text().splitlines()
    )


def ran(run: PlaybookRun, task_name: str) -> bool:
    """Whether the task ran (False when it was skipped, or not even evaluated because the plan
    found nothing to do)."""
    for task in run.report["plays"][0]["tasks"]:
        if task["task"]["name"].endswith(task_name):
            return not task["hosts"]["localhost"].get("skipped")
    return False


def failed_task(run: PlaybookRun) -> str:
    for task in run.report["plays"][0]["tasks"]:
        if task["hosts"]["localhost"].get("failed"):
            return task["task"]["name"].split(" : ", 1)[-1]
    return ""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compose-configured")
    (tmp / "bin").mkdir()
    (tmp / "bin" / "docker").write_text(FAKE_DOCKER)
    (tmp / "bin" / "docker").chmod(0o755)
    out = {}
    with FakeDockerAPI(tmp / "docker.sock") as api:
        out["first"] = configure(tmp, api, "first"), validated(tmp), list(api.volumes)
        out["again"] = configure(tmp, api, "again"), validated(tmp), list(api.requests)
        del api.volumes["demo_cache"]
        (tmp / "project").chmod(0o755)
        out["volume"] = configure(tmp, api, "volume"), validated(tmp), list(api.requests)
        (tmp / "fail-config").write_text("")
        out["invalid"] = configure(tmp, api, "invalid", tag="two"), validated(tmp)
        (tmp / "fail-config").unlink()
        out["retried"] = configure(tmp, api, "retried", tag="two"), validated(tmp)
        out["settled"] = configure(tmp, api, "settled", tag="two"), validated(tmp)
        out["labels"] = {name: v["Labels"] for name, v in api.volumes.items()}
    return tmp, out


def test_a_first_run_renders_validates_and_creates_the_volumes(runs):
    tmp, out = runs
    run, was_validated, volumes = out["first"]
    assert run.rc == 0, run.output
    assert was_validated
    assert sorted(volumes) == ["demo_cache", "demo_data"]
    assert out["labels"]["demo_data"] == {
        "com.docker.compose.project": "demo",
        "com.docker.compose.volume": "data",
    }
    assert os.stat(tmp / "project").st_mode & 0o777 == 0o750
    assert "s3cret-token" not in run.output


def test_a_converged_project_asks_docker_nothing_but_the_probe(runs):
    _, out = runs
    run, was_validated, requests = out["again"]
    assert run.rc == 0, run.output
    assert run.changed("localhost") == 0
    assert not was_validated
    assert not ran(run, VALIDATE)
    assert not ran(run, VOLUMES)
    assert requests == ["GET /volumes/demo_data", "GET /volumes/demo_cache"]  # the probe's
    # argument spec, probe, plan, the skipped include: no task of the changes is evaluated
    assert len(role_tasks(run)) == 4, role_tasks(run)


def test_a_removed_volume_and_the_directory_mode_are_fixed_alone(runs):
    tmp, out = runs
    run, was_validated, requests = out["volume"]
    assert run.rc == 0, run.output
    assert run.changed("localhost") == 2  # the directory's mode and one volume
    assert not was_validated
    created = [r for r in requests if r.startswith("POST")]
    assert len(created) == 1, created
    assert '"Name": "demo_cache"' in created[0]
    assert '"com.docker.compose.volume": "cache"' in created[0]
    assert not [r for r in requests if r.startswith("DELETE")]
    assert os.stat(tmp / "project").st_mode & 0o777 == 0o750


def test_a_changed_render_is_validated_and_a_failure_is_not_forgotten(runs):
    _, out = runs
    invalid, was_validated = out["invalid"]
    assert invalid.rc != 0
    assert was_validated
    assert failed_task(invalid) == VALIDATE
    # the file was written before the validation failed: the next run validates it again
    retried, was_validated = out["retried"]
    assert retried.rc == 0, retried.output
    assert was_validated
    assert retried.changed("localhost") == 1  # only the stamp of what was validated
    settled, was_validated = out["settled"]
    assert settled.changed("localhost") == 0
    assert not was_validated
