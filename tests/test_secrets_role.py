"""glassbox_secrets for real on local hosts: precedence, strength, modes, no rotation, no leaks.

Batched: one host per case, two runs of ansible-playbook for the whole set. Between the runs each
case does what its story needs (delete the controller cache, delete the host file, shorten the
spec or give a value in the inventory), then the second run shows what the role made of it.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from tests.ansible_run import PlaybookRun, local_inventory, play

pytestmark = pytest.mark.roles

SPEC = [
    {"name": "salt", "length": 64},
    {"name": "public_key", "prefix": "pk-lf-", "length": 32},
    {"name": "given", "value": "from-the-vault"},
]
PLAYS = [
    {
        "name": "exercise glassbox_secrets",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "include glassbox_secrets",
                "ansible.builtin.include_role": {"name": "glassbox_secrets"},
                "vars": {
                    "glassbox_secrets_file": "{{ out }}/{{ inventory_hostname }}/host/secrets.json",
                    "glassbox_secrets_cache_name": "demo",
                    "glassbox_secrets_spec": "{{ spec | default(base_spec) }}",
                },
            }
        ],
    }
]
# what each case changes between the first and the second run
CASES = {
    "fresh": None,
    "other": None,
    "rerun": None,
    "cache_lost": "delete the controller cache",
    "host_file_lost": "delete the host file",
    "mode_loosened": "chmod the host file 0644",
    "spec_shortened": {"spec": [{"name": "salt", "length": 64}]},
    "value_given": {"spec": [{"name": "salt", "length": 64, "value": "rotated-on-purpose"}]},
}


class Batch:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.first_values: dict[str, dict] = {}

    def host_file(self, host: str) -> Path:
        return self.tmp / "out" / host / "host" / "secrets.json"

    def cache(self, host: str) -> Path:
        return self.tmp / "credentials" / host / "demo.json"

    def values(self, host: str) -> dict:
        return json.loads(self.host_file(host).read_text())

    def converge(self, host_vars: dict[str, dict]) -> PlaybookRun:
        common = {"out": str(self.tmp / "out"), "base_spec": SPEC}
        run = play(self.tmp, PLAYS, inventory=local_inventory(host_vars, groups={}, common=common))
        assert run.rc == 0, run.output
        return run


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    batch = Batch(tmp_path_factory.mktemp("secrets"))
    batch.first = batch.converge({host: {} for host in CASES})
    batch.first_values = {host: batch.values(host) for host in CASES}
    second_vars = {}
    for host, change in CASES.items():
        if change == "delete the controller cache":
            batch.cache(host).unlink()
        elif change == "delete the host file":
            batch.host_file(host).unlink()
        elif change == "chmod the host file 0644":
            batch.host_file(host).chmod(0o644)
        second_vars[host] = change if isinstance(change, dict) else {}
    batch.second = batch.converge(second_vars)
    return batch


def test_generates_strong_hex_keeps_given_values_and_writes_0600(batch):
    values = batch.first_values["fresh"]
    assert re.fullmatch(r"[0-9a-f]{64}", values["salt"])
    assert re.fullmatch(r"pk-lf-[0-9a-f]{32}", values["public_key"])
    assert values["given"] == "from-the-vault"
    assert json.loads(batch.cache("fresh").read_text()) == values
    for path in (batch.host_file("fresh"), batch.cache("fresh")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(batch.host_file("fresh").parent.stat().st_mode) == 0o700
    for run in (batch.first, batch.second):
        for host_values in batch.first_values.values():
            for value in host_values.values():
                assert value not in run.output, "a secret value was printed"


def test_two_hosts_worth_of_generation_differ(batch):
    a, b = batch.first_values["fresh"], batch.first_values["other"]
    assert a["salt"] != b["salt"]
    assert a["public_key"] != b["public_key"]


def test_rerun_without_controller_cache_reuses_what_the_host_has(batch):
    before = batch.first_values["cache_lost"]
    assert batch.values("cache_lost") == before
    assert json.loads(batch.cache("cache_lost").read_text()) == before, "cache not rebuilt"
    assert batch.second.changed("cache_lost") == 1  # only the rebuilt cache file


HOST_WRITE = "Write the secrets file on the host (0600, the source of truth)"
CACHE_WRITE = "Write the controller-side copy (0600, git-ignored)"


WRITES = (
    "Create the directory of the secrets file",
    HOST_WRITE,
    "Create the controller-side credentials directory",
    CACHE_WRITE,
)


def skipped(run, task_name: str, host: str) -> bool:
    """Whether the task did not run for the host: skipped, or not even evaluated for it (the
    include of the writes was skipped)."""
    for task in run.report["plays"][0]["tasks"]:
        if task["task"]["name"].endswith(task_name) and host in task["hosts"]:
            return bool(task["hosts"][host].get("skipped"))
    return True


def evaluated(run, host: str) -> list[str]:
    """The write tasks the run evaluated for the host (run or skipped)."""
    return [
        task["task"]["name"]
        for task in run.report["plays"][0]["tasks"]
        if task["task"]["name"].endswith(WRITES) and host in task["hosts"]
    ]


def test_second_run_changes_nothing(batch):
    assert batch.second.changed("rerun") == 0
    assert batch.values("rerun") == batch.first_values["rerun"]


def test_a_converged_host_skips_the_copy_modules(batch):
    assert skipped(batch.second, HOST_WRITE, "rerun")
    assert skipped(batch.second, CACHE_WRITE, "rerun")
    # not even evaluated: the one include of the four writes is skipped for a converged host
    assert evaluated(batch.second, "rerun") == []
    assert evaluated(batch.first, "rerun") != []
    assert not skipped(batch.second, HOST_WRITE, "host_file_lost")
    assert not skipped(batch.second, CACHE_WRITE, "cache_lost")


def test_a_loosened_mode_is_put_back_and_nothing_rotates(batch):
    # the probe's sha1 still matches; the mode alone makes the file differ
    assert not skipped(batch.second, HOST_WRITE, "mode_loosened")
    assert stat.S_IMODE(batch.host_file("mode_loosened").stat().st_mode) == 0o600
    assert batch.values("mode_loosened") == batch.first_values["mode_loosened"]


def test_controller_cache_restores_a_lost_host_file(batch):
    assert batch.values("host_file_lost") == batch.first_values["host_file_lost"]


def test_stored_values_outlive_a_shorter_spec(batch):
    assert batch.values("spec_shortened") == batch.first_values["spec_shortened"], (
        "a stored secret was dropped"
    )


def test_inventory_value_overrides_the_stored_one(batch):
    assert batch.values("value_given")["salt"] == "rotated-on-purpose"
    assert batch.first_values["value_given"]["salt"] != "rotated-on-purpose"
