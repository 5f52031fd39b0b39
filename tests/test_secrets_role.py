"""glassbox_secrets for real on localhost: precedence, strength, modes, no rotation, no leaks."""

from __future__ import annotations

import json
import re
import stat

from tests.ansible_run import role_play, run_playbook

SPEC = [
    {"name": "salt", "length": 64},
    {"name": "public_key", "prefix": "pk-lf-", "length": 32},
    {"name": "given", "value": "from-the-vault"},
]


def converge(tmp_path, spec=SPEC):
    tmp_path.mkdir(parents=True, exist_ok=True)
    host_file = tmp_path / "host" / "secrets.json"
    plays = role_play(
        "glassbox_secrets",
        {
            "glassbox_secrets_file": str(host_file),
            "glassbox_secrets_cache_name": "demo",
            "glassbox_secrets_spec": spec,
        },
        gather_facts=False,
    )
    run = run_playbook(tmp_path, plays)
    assert run.rc == 0, run.output
    return run, host_file, tmp_path / "credentials" / "localhost" / "demo.json"


def test_generates_strong_hex_keeps_given_values_and_writes_0600(tmp_path):
    run, host_file, cache = converge(tmp_path)
    values = json.loads(host_file.read_text())
    assert re.fullmatch(r"[0-9a-f]{64}", values["salt"])
    assert re.fullmatch(r"pk-lf-[0-9a-f]{32}", values["public_key"])
    assert values["given"] == "from-the-vault"
    assert json.loads(cache.read_text()) == values
    for path in (host_file, cache):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(host_file.parent.stat().st_mode) == 0o700
    for value in values.values():
        assert value not in run.output, "a secret value was printed"


def test_two_hosts_worth_of_generation_differ(tmp_path):
    _, first, _ = converge(tmp_path / "a")
    _, second, _ = converge(tmp_path / "b")
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["salt"] != b["salt"]
    assert a["public_key"] != b["public_key"]


def test_rerun_without_controller_cache_reuses_what_the_host_has(tmp_path):
    _, host_file, cache = converge(tmp_path)
    before = host_file.read_text()
    cache.unlink()
    run, _, _ = converge(tmp_path)
    assert host_file.read_text() == before
    assert json.loads(cache.read_text()) == json.loads(before), "cache not rebuilt from host"
    assert "changed=1 " in run.output  # only the rebuilt cache file


def test_second_run_changes_nothing(tmp_path):
    converge(tmp_path)
    run, _, _ = converge(tmp_path)
    assert "changed=0 " in run.output, run.output


def test_controller_cache_restores_a_lost_host_file(tmp_path):
    _, host_file, _ = converge(tmp_path)
    before = json.loads(host_file.read_text())
    host_file.unlink()
    converge(tmp_path)
    assert json.loads(host_file.read_text()) == before


def test_stored_values_outlive_a_shorter_spec(tmp_path):
    _, host_file, _ = converge(tmp_path)
    before = json.loads(host_file.read_text())
    converge(tmp_path, spec=[{"name": "salt", "length": 64}])
    assert json.loads(host_file.read_text()) == before, "a stored secret was dropped"


def test_inventory_value_overrides_the_stored_one(tmp_path):
    _, host_file, _ = converge(tmp_path)
    converge(tmp_path, spec=[{"name": "salt", "length": 64, "value": "rotated-on-purpose"}])
    assert json.loads(host_file.read_text())["salt"] == "rotated-on-purpose"
