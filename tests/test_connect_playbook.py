"""connect.yml and smoke.yml for real: ansible-playbook against a throwaway inventory in tmp_path.

The inventory sets the facts the roles publish (`langfuse_connection`, `vllm_connection`) as
host vars; connect.yml must write the app env file beside that inventory, 0600 in a 0700
directory, print its path, and never print a secret. smoke.yml must run `pytest smoke` against
that file, and only with `--tags smoke`.
"""

from __future__ import annotations

import stat
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import pytest
import yaml

from tests.ansible_run import PlaybookRun, play
from tests.standin.harness import REPO_ROOT, SMOKE_VARIABLES
from tests.standin.langfuse_double import LangfuseDouble
from tests.standin.llm_server import LLMServerProcess
from tests.tls_certs import make_ca

pytestmark = [pytest.mark.roles, pytest.mark.timeout(180)]


def _inventory(tmp_path: Path, lf_vars: dict[str, Any], vllm_vars: dict[str, Any]) -> Path:
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {
        "all": {
            "children": {
                "observability": {"hosts": {"lf-host": {**local, **lf_vars}}},
                "inference": {"hosts": {"gpu-host": {**local, **vllm_vars}}},
            }
        }
    }
    (inventory_dir / "hosts.yml").write_text(yaml.safe_dump(hosts), encoding="utf-8")
    return inventory_dir


def _connect(inventory_dir: Path) -> PlaybookRun:
    return play(
        inventory_dir.parent / "run",
        "playbooks/connect.yml",
        inventory=inventory_dir / "hosts.yml",
        report=False,
        timeout=150,
    )


def _secrets() -> dict[str, str]:
    return {
        "public_key": f"pk-lf-{uuid.uuid4().hex}",
        "secret_key": f"sk-lf-{uuid.uuid4().hex}",
        "api_key": f"vllm-{uuid.uuid4().hex}",
    }


def test_connect_writes_the_app_env_file(tmp_path: Path) -> None:
    secrets = _secrets()
    lf = {
        "base_url": "http://lf.example.test:3000",
        "public_key": secrets["public_key"],
        "secret_key": secrets["secret_key"],
    }
    vllm = {
        "base_url": "http://gpu.example.test:8000/v1",
        "api_key": secrets["api_key"],
        "models": ["qwen-small", "other"],
    }
    inventory_dir = _inventory(tmp_path, {"langfuse_connection": lf}, {"vllm_connection": vllm})
    result = _connect(inventory_dir)
    output = result.stdout + result.stderr
    assert result.rc == 0, output

    env_file = inventory_dir / "credentials" / "app.env"
    assert env_file.read_text(encoding="utf-8").splitlines() == [
        f"LANGFUSE_PUBLIC_KEY={secrets['public_key']}",
        f"LANGFUSE_SECRET_KEY={secrets['secret_key']}",
        "LANGFUSE_BASE_URL=http://lf.example.test:3000",
        "LANGFUSE_HOST=http://lf.example.test:3000",
        "OPENAI_BASE_URL=http://gpu.example.test:8000/v1",
        f"OPENAI_API_KEY={secrets['api_key']}",
        "GLASSBOX_MODEL=qwen-small",
    ]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(env_file.parent.stat().st_mode) == 0o700
    assert str(env_file) in result.stdout, "the play should print where the file is"
    for value in secrets.values():
        assert value not in output, "a secret reached the playbook output"

    again = play(
        inventory_dir.parent / "again",
        "playbooks/connect.yml",
        inventory=inventory_dir / "hosts.yml",
        timeout=150,
    )
    assert again.rc == 0, again.output
    assert again.changed("localhost") == 0
    # A converged controller skips the one include that holds every write (roles/connect).
    results = {
        task["task"]["name"].rpartition(" : ")[2]: task["hosts"]["localhost"]
        for task in again.report["plays"][0]["tasks"]
    }
    names = ("Write the app env file", "Create the credentials directory")
    assert not [name for name in names if name in results], "a converged app env was rewritten"
    assert results["Write what differs (directories, trust bundle, app env file)"].get("skipped")


def test_connect_fails_clearly_without_the_facts(tmp_path: Path) -> None:
    secrets = _secrets()
    lf = {"base_url": "http://lf:3000", "public_key": secrets["public_key"], "secret_key": ""}
    inventory_dir = _inventory(tmp_path, {"langfuse_connection": lf}, {})
    result = _connect(inventory_dir)
    output = result.stdout + result.stderr
    assert result.rc != 0, output
    assert "langfuse_connection on lf-host lacks secret_key" in output
    assert "vllm_connection on gpu-host lacks base_url, api_key, models" in output
    assert not (inventory_dir / "credentials" / "app.env").exists()
    assert secrets["public_key"] not in output


def _smoke_playbook(inventory_dir: Path, *tags: str) -> PlaybookRun:
    return play(
        inventory_dir.parent / "run",
        "playbooks/smoke.yml",
        inventory=inventory_dir / "hosts.yml",
        tags=tags,
        report=False,
        cwd=REPO_ROOT,
        drop_env=[*SMOKE_VARIABLES, "PYTEST_ADDOPTS"],
        timeout=170,
    )


@pytest.mark.slow
def test_smoke_playbook_runs_the_suite_only_when_asked(
    tmp_path: Path,
    standin_llm: LLMServerProcess,
    langfuse_double: Callable[..., LangfuseDouble],
    app_env_for: Callable[..., Path],
) -> None:
    inventory_dir = _inventory(tmp_path, {}, {})
    (inventory_dir / "credentials").mkdir(mode=0o700)
    double = langfuse_double()
    app_env_for(standin_llm, double).rename(inventory_dir / "credentials" / "app.env")

    untagged = _smoke_playbook(inventory_dir)
    assert untagged.rc == 0, untagged.stdout
    # Only the role's argument validation (tagged always) may run without the tag.
    assert "Run pytest smoke]" not in untagged.stdout, "smoke.yml must run only with --tags smoke"
    assert not double.observations(), "the suite reached Langfuse without --tags smoke"

    tagged = _smoke_playbook(inventory_dir, "smoke")
    assert tagged.rc == 0, tagged.stdout[-4000:]
    assert "9 passed" in tagged.stdout
    assert double.scores(), "the suite ran against another stack than the inventory's"
    assert double.config.secret_key not in tagged.stdout


def test_connect_adds_the_trust_settings_with_tls(tmp_path: Path) -> None:
    """With TLS on and an internal CA, the app env names the CA and a bundle of it + certifi's
    roots; an existing file's http URLs turning https is said in the output."""
    secrets = _secrets()
    lf = {
        "base_url": "https://lf.example.test",
        "public_key": secrets["public_key"],
        "secret_key": secrets["secret_key"],
    }
    vllm = {"base_url": "https://gpu.example.test:8000/v1", "api_key": secrets["api_key"]}
    vllm["models"] = ["m"]
    inventory_dir = _inventory(
        tmp_path,
        {"langfuse_connection": lf},
        {"vllm_connection": vllm, "tls_certificate_ca_file": "PLACEHOLDER"},
    )
    tls_dir = inventory_dir / "credentials" / "tls"
    tls_dir.mkdir(parents=True)
    ca = make_ca("connect test CA")
    (tls_dir / "ca.crt").write_text(ca.cert_pem)
    hosts = (
        (inventory_dir / "hosts.yml").read_text().replace("PLACEHOLDER", str(tls_dir / "ca.crt"))
    )
    (inventory_dir / "hosts.yml").write_text(hosts)
    old_env = inventory_dir / "credentials" / "app.env"
    old_env.write_text(
        "LANGFUSE_BASE_URL=http://lf.example.test:3000\nOPENAI_BASE_URL=https://gpu:8000/v1\n"
    )

    result = _connect(inventory_dir)
    assert result.rc == 0, result.output
    bundle = tls_dir / "ca-bundle.pem"
    lines = old_env.read_text(encoding="utf-8").splitlines()
    assert lines[-3:] == [
        f"GLASSBOX_CA_FILE={tls_dir / 'ca.crt'}",
        f"SSL_CERT_FILE={bundle}",
        f"REQUESTS_CA_BUNDLE={bundle}",
    ]
    assert "LANGFUSE_BASE_URL=https://lf.example.test" in lines
    roots = Path(certifi.where()).read_text(encoding="ascii")
    assert bundle.read_text(encoding="ascii") == ca.cert_pem + roots
    assert "LANGFUSE_BASE_URL: http -> https" in result.stdout
    assert "OPENAI_BASE_URL:" not in result.stdout, "an unchanged scheme was reported"
    for value in secrets.values():
        assert value not in result.output
