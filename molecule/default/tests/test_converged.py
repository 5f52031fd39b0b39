"""Properties of the converged host as a whole: check mode is clean and no secret leaks."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def check_run():
    """`ansible-playbook converge.yml --check --diff` against the converged instance."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "run through `molecule verify`: MOLECULE_INVENTORY_FILE is not set"
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(SCENARIO / "converge.yml"), "--check", "--diff"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def test_check_diff_on_converged_host_reports_no_change(check_run):
    assert check_run.returncode == 0, check_run.stdout[-3000:] + check_run.stderr[-2000:]
    recap = re.findall(r"changed=(\d+).*?failed=(\d+)", check_run.stdout)
    assert recap, check_run.stdout[-2000:]
    clean = all(changed == "0" and failed == "0" for changed, failed in recap)
    assert clean, check_run.stdout[-3000:]


def test_no_secret_value_in_the_output(check_run, host_secrets):
    output = check_run.stdout + check_run.stderr
    for path, values in host_secrets.items():
        for name, value in values.items():
            assert value not in output, f"{name} from {path} appears in ansible-playbook output"


def app_env_file() -> Path:
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "run through `molecule verify`: MOLECULE_INVENTORY_FILE is not set"
    return Path(inventory).parent / "credentials" / "app.env"


def test_app_env_on_the_controller_carries_the_hosts_keys(host_secrets):
    path = app_env_file()
    assert path.is_file(), f"connect.yml did not write {path}"
    assert path.stat().st_mode & 0o777 == 0o600
    settings = dict(
        line.split("=", 1) for line in path.read_text().splitlines() if line and "=" in line
    )
    langfuse = host_secrets["/etc/glassbox/langfuse/secrets.json"]
    vllm = host_secrets["/etc/glassbox/vllm/secrets.json"]
    assert settings["LANGFUSE_PUBLIC_KEY"] == langfuse["public_key"]
    assert settings["LANGFUSE_SECRET_KEY"] == langfuse["secret_key"]
    assert settings["OPENAI_API_KEY"] == vllm["api_key"]
    assert settings["OPENAI_BASE_URL"].endswith("/v1")
    assert settings["LANGFUSE_BASE_URL"] == settings["LANGFUSE_HOST"]
    assert settings["GLASSBOX_MODEL"]


def test_every_service_has_its_secrets_file(host_secrets):
    assert set(host_secrets) == {
        "/etc/glassbox/langfuse/secrets.json",
        "/etc/glassbox/vllm/secrets.json",
    }
