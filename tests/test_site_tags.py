"""site.yml's tags re-run one slice, and the input checks always run first."""

from __future__ import annotations

import re

import pytest

from tests.ansible_run import play

pytestmark = pytest.mark.roles


def listed_roles(tmp_path, *tags: str) -> tuple[list[str], str]:
    run = play(
        tmp_path,
        "site.yml",
        tags=tags,
        args=["--list-tasks"],
        report=False,
        timeout=180,
    )
    assert run.rc == 0, run.output
    plays = re.findall(r"^\s*play #\d+ \(([^)]*)\): (.*?)\s+TAGS:", run.stdout, re.MULTILINE)
    # A role's argument validation is tagged `always` by Ansible: it is listed for every role.
    tasks = "\n".join(
        line
        for line in run.stdout.splitlines()
        if "Validating arguments against arg spec" not in line
    )
    return [name for _hosts, name in plays], tasks


@pytest.mark.parametrize(
    ("tag", "expected", "absent"),
    [
        ("docker", ["docker_engine :"], ["nvidia_driver :", "vllm :", "langfuse :", "connect :"]),
        ("gpu", ["nvidia_driver :", "nvidia_container_toolkit :"], ["vllm :", "langfuse :"]),
        (
            "edge",
            ["Install Caddy and its main Caddyfile"],
            ["docker_engine :", "vllm :", "langfuse :"],
        ),
        ("vllm", ["vllm :"], ["docker_engine :", "langfuse :", "nvidia_driver : Install"]),
        (
            "langfuse",
            ["langfuse :"],
            ["docker_engine :", "vllm : Load", "connect :", "langfuse_models :"],
        ),
        (
            "langfuse_models",
            ["langfuse_models : Check the facts published by the langfuse and vllm roles"],
            ["docker_engine :", "vllm : Load", "langfuse : Load", "connect :"],
        ),
        (
            "firewall",
            ["host_firewall : Install, write, load or remove what differs"],
            ["docker_engine :", "vllm : Load", "langfuse : Load", "connect :"],
        ),
    ],
)
def test_a_tag_runs_its_slice_after_the_checks(tmp_path, tag, expected, absent):
    _plays, tasks = listed_roles(tmp_path, tag)
    assert "Check every host's settings before anything changes" in tasks
    for word in expected:
        assert word in tasks, f"--tags {tag} should list {word}"
    slice_part = tasks.split("Check every host's settings before anything changes", 1)[1]
    slice_part = slice_part.split("play #", 2)[-1]  # after the checks' play
    for word in absent:
        assert word not in slice_part, f"--tags {tag} should not list {word}"


def test_smoke_runs_only_when_asked(tmp_path):
    _plays, everything = listed_roles(tmp_path)
    assert "smoke_suite : Run pytest smoke" not in everything
    _plays, smoke = listed_roles(tmp_path, "smoke")
    assert "smoke_suite : Run pytest smoke" in smoke
