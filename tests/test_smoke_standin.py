"""`pytest smoke` against the stand-in stack: the right diagnosis for each injected fault (the
happy path runs against the real Langfuse: tests/test_realstack.py). Every run is a child
process started the way a user starts it.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.standin.harness import REPO_ROOT, run_smoke
from tests.standin.langfuse_double import LangfuseDouble
from tests.standin.llm_server import LLMServerProcess, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PIPELINE = "smoke/test_tracing.py::test_traced_pipeline_lands_with_usage"
LANGFUSE_HEALTH = "smoke/test_health.py::test_langfuse_health_is_v4_with_database"
LANGFUSE_KEYS = "smoke/test_health.py::test_langfuse_keys_authenticate"
VLLM_HEALTH = "smoke/test_health.py::test_vllm_health"
VLLM_MODELS = "smoke/test_health.py::test_vllm_lists_served_model"

MakeDouble = Callable[..., LangfuseDouble]
WriteEnv = Callable[..., Path]


def _nodes(*node_ids: str) -> list[str]:
    return [str(REPO_ROOT / node) for node in node_ids]


def _summary(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_ingestion_within_the_deadline_is_polled_until_readable(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double(ingest_delay_s=3)
    result = run_smoke(*_nodes(PIPELINE), env_file=app_env_for(standin_llm, double), deadline_s=30)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_polling_waits_for_the_span_as_well_as_the_generation(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    """The generation is readable before its parent span: the suite must keep polling."""
    double = langfuse_double(span_delay_s=4)
    result = run_smoke(*_nodes(PIPELINE), env_file=app_env_for(standin_llm, double), deadline_s=30)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]


def test_ingestion_stuck_past_the_deadline(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double(ingest_delay_s=600)
    result = run_smoke(*_nodes(PIPELINE), env_file=app_env_for(standin_llm, double), deadline_s=3)
    assert result.returncode == 1, result.stdout[-4000:]
    assert "Langfuse INGESTION STUCK" in result.stdout
    assert "langfuse-worker" in result.stdout
    assert "ClickHouse" in result.stdout
    assert f"{double.base_url}/project/standin-project/traces/" in result.stdout  # trace URL


def test_wrong_langfuse_keys(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double(secret_key=f"sk-lf-real-{uuid.uuid4().hex}")
    secret = f"sk-lf-stale-{uuid.uuid4().hex}"
    env_file = app_env_for(standin_llm, double, langfuse_secret_key=secret)
    result = run_smoke(*_nodes(LANGFUSE_KEYS, PIPELINE), env_file=env_file, deadline_s=3)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert output.count("Langfuse BAD KEY") >= 2, output[-4000:]
    assert "Invalid credentials" in output
    assert secret not in output


def test_usage_dropped(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double(drop_usage=True)
    result = run_smoke(*_nodes(PIPELINE), env_file=app_env_for(standin_llm, double), deadline_s=10)
    assert result.returncode == 1, result.stdout[-4000:]
    assert "USAGE MISSING" in result.stdout
    assert "landed without usageDetails" in result.stdout


def test_langfuse_down(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double()
    env_file = app_env_for(standin_llm, double)
    double.stop()  # the port is closed now
    result = run_smoke(*_nodes(LANGFUSE_HEALTH, PIPELINE), env_file=env_file, deadline_s=3)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert output.count("Langfuse DOWN") >= 2, output[-4000:]
    assert "vLLM DOWN" not in output


def test_langfuse_wrong_major_version(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double(version="3.150.0")
    result = run_smoke(*_nodes(LANGFUSE_HEALTH), env_file=app_env_for(standin_llm, double))
    assert result.returncode == 1, result.stdout[-4000:]
    assert "Langfuse VERSION" in result.stdout
    assert "'3.150.0'" in result.stdout


def test_server_older_than_the_pinned_sdk_needs(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    """A 4.x server older than the SDK's floor fails health, naming both versions."""
    sdk = importlib.metadata.version("langfuse")
    double = langfuse_double(version="4.15.2")
    result = run_smoke(*_nodes(LANGFUSE_HEALTH), env_file=app_env_for(standin_llm, double))
    assert result.returncode == 1, result.stdout[-4000:]
    assert "Langfuse VERSION: the server is 4.15.2, older than 4.16.0" in result.stdout
    assert f"SDK {sdk}" in result.stdout


def test_rejected_ingest_fails_at_once_naming_endpoint_and_message(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    """Web answering 4xx to the span export is REJECTED at once, not 'stuck' at the deadline."""
    message = f"glassbox test rejection {uuid.uuid4().hex[:8]}"
    double = langfuse_double(reject_ingest=message)
    started = time.monotonic()
    result = run_smoke(*_nodes(PIPELINE), env_file=app_env_for(standin_llm, double), deadline_s=90)
    took = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert "Langfuse REJECTED: POST /api/public/otel/v1/traces answered 400" in output, output
    assert message in output
    assert "INGESTION STUCK" not in output
    assert took < 60, f"took {took:.0f} s: the suite waited for its deadline"


def test_vllm_down(
    standin_llm: LLMServerProcess,
    langfuse_double: MakeDouble,
    app_env_for: WriteEnv,
) -> None:
    double = langfuse_double()
    closed = f"http://127.0.0.1:{free_port()}/v1"
    env_file = app_env_for(standin_llm, double, openai_base_url=closed)
    result = run_smoke(*_nodes(VLLM_HEALTH, PIPELINE), env_file=env_file, deadline_s=3)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert output.count("vLLM DOWN") >= 2, output[-4000:]
    assert "Langfuse DOWN" not in output


def test_wrong_vllm_key(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double()
    secret = f"sk-vllm-stale-{uuid.uuid4().hex}"
    env_file = app_env_for(standin_llm, double, openai_api_key=secret)
    result = run_smoke(*_nodes(VLLM_MODELS, PIPELINE), env_file=env_file, deadline_s=3)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    assert output.count("vLLM BAD KEY") >= 2, output[-4000:]
    assert secret not in output


def test_environment_overrides_the_env_file(
    standin_llm: LLMServerProcess, langfuse_double: MakeDouble, app_env_for: WriteEnv
) -> None:
    double = langfuse_double()
    env_file = app_env_for(standin_llm, double, langfuse_public_key="pk-lf-stale")
    result = run_smoke(
        *_nodes(LANGFUSE_KEYS),
        env_file=env_file,
        extra_env={"LANGFUSE_PUBLIC_KEY": double.config.public_key},
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_no_configuration_fails_at_once_with_one_line(tmp_path: Path) -> None:
    # A copy of the suite: its default env file (../inventories/local/credentials/app.env
    # relative to the suite) then certainly does not exist, whatever this checkout holds.
    shutil.copytree(REPO_ROOT / "smoke", tmp_path / "smoke")
    result = run_smoke(env_file=None, smoke_dir=tmp_path / "smoke", timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 4, lines  # pytest's usage-error exit code
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: smoke: no stack configured; run `ansible-playbook")
    assert "GLASSBOX_ENV_FILE" in lines[0]


def test_missing_env_file_named_in_the_message(tmp_path: Path) -> None:
    result = run_smoke(env_file=tmp_path / "absent.env", timeout=60)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 4, lines
    assert len(lines) == 1, lines
    assert f"GLASSBOX_ENV_FILE={tmp_path / 'absent.env'} does not exist" in lines[0]
