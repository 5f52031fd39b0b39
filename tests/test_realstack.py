"""The smoke suite against the real Langfuse v4 (web + worker from upstream source), configured by
roles/langfuse's own templates, with the real LLM stand-in. Marked `realstack`: `make
test-realstack` runs these, `make test-unit` leaves them out. The first run builds Langfuse
(several minutes, cached under ~/.cache/glassbox/realstack; see tests/realstack/).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.realstack.build import REPO_ROOT
from tests.realstack.stack import LLMEndpoint, RealStack, StackError, free_port, http_ok
from tests.standin.harness import LLM_API_KEY, SERVED_MODEL, run_smoke
from tests.standin.llm_server import LLMServerProcess

pytestmark = pytest.mark.realstack
# The `real_stack` fixture (one stack for the session) is in tests/conftest.py.


def test_smoke_suite_passes_against_real_langfuse(real_stack: RealStack) -> None:
    """Every smoke test runs and passes: none skipped, none xfailed."""
    assert real_stack.app_env_file is not None
    start = time.monotonic()
    result = run_smoke(
        options=("-rA",), env_file=real_stack.app_env_file, deadline_s=90, timeout=600
    )
    took = time.monotonic() - start
    output = result.stdout + result.stderr
    print(f"\nsmoke against the real Langfuse {real_stack.version}: {took:.1f} s\n{output}")
    assert result.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary, summary
    for word in ("failed", "skipped", "xfailed", "xpassed", "error"):
        assert word not in summary, summary


def test_health_reports_the_built_version(real_stack: RealStack) -> None:
    status, body = http_ok(f"{real_stack.base_url}/api/public/health")
    assert status == 200, body
    assert json.loads(body)["version"] == real_stack.built.version  # type: ignore[union-attr]


def test_headless_init_keys_from_the_role_authenticate(real_stack: RealStack) -> None:
    """The role's rendered LANGFUSE_INIT_* created the project whose keys connect.yml wrote."""
    values = dict(
        line.split("=", 1)
        for line in real_stack.app_env_file.read_text().splitlines()  # type: ignore[union-attr]
        if "=" in line
    )
    assert values["LANGFUSE_BASE_URL"] == real_stack.base_url
    response = httpx.get(
        f"{real_stack.base_url}/api/public/projects",
        auth=(values["LANGFUSE_PUBLIC_KEY"], values["LANGFUSE_SECRET_KEY"]),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    projects = response.json()["data"]
    assert [p["id"] for p in projects] == ["glassbox"], projects


def test_clickhouse_front_reads_back_a_datetime64_microsecond_integer(tmp_path: Path) -> None:
    """Langfuse's worker writes DateTime64(6) columns as microsecond epoch integers in
    JSONEachRow; an engine that reads them as seconds drops every span silently."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.realstack.clickhouse_front",
            "--data",
            str(tmp_path / "chdb"),
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while http_ok(f"{base}/ping")[0] != 200:
            assert proc.poll() is None, "the ClickHouse front exited"
            assert time.monotonic() < deadline, "the ClickHouse front did not answer /ping"
            time.sleep(0.2)

        def post(sql: str, body: bytes = b"") -> tuple[int, str]:
            response = httpx.post(f"{base}/", params={"query": sql}, content=body, timeout=30)
            return response.status_code, response.text

        status, text = post(
            "CREATE TABLE t (id String, start_time DateTime64(6)) ENGINE = MergeTree ORDER BY id"
        )
        assert status == 200, text
        row = b'{"id":"a","start_time":1764200000123456}\n'
        status, text = post("INSERT INTO t FORMAT JSONEachRow", row)
        assert status == 200, text
        status, text = post("SELECT id, toString(start_time, 'UTC') AS s FROM t FORMAT JSONEachRow")
        assert status == 200, text
        assert json.loads(text) == {"id": "a", "s": "2025-11-26 23:33:20.123456"}
        status, text = post("SELECT * FROM no_such_table")
        assert status == 404, text
        assert "Code: 60" in text
    finally:
        proc.kill()
        proc.wait(10)


def test_a_misnamed_variable_in_the_role_fails_the_start_naming_langfuse(
    standin_llm: LLMServerProcess, real_stack: RealStack, tmp_path: Path
) -> None:
    """CLICKHOUSE_URL renamed in the role's langfuse.env.j2: the real worker refuses to start
    and the harness says which Langfuse component did not come up, with its log."""
    roles = tmp_path / "roles"
    shutil.copytree(REPO_ROOT / "roles", roles)
    template = roles / "langfuse" / "templates" / "langfuse.env.j2"
    text = template.read_text()
    assert "\nCLICKHOUSE_URL=" in text
    template.write_text(text.replace("\nCLICKHOUSE_URL=", "\nCLICKHOUSE_URI=", 1))
    broken = RealStack(
        tmp_path / "stack",
        LLMEndpoint(standin_llm.base_url, LLM_API_KEY, SERVED_MODEL),
        roles_dir=roles,
    )
    with pytest.raises(StackError) as failed:
        broken.start()
    first_line = str(failed.value).splitlines()[0]
    assert re.match(r"realstack: langfuse-(worker|web) did not come up", first_line), first_line
    assert "CLICKHOUSE_URL" in str(failed.value)
    assert all(c.proc is None or c.proc.poll() is not None for c in broken.components)
