"""Fixtures for the tests of our own code: the stand-in stack for the smoke suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.realstack.stack import LLMEndpoint, RealStack
from tests.standin.harness import LLM_API_KEY, SERVED_MODEL, AppEnv
from tests.standin.langfuse_double import DoubleConfig, LangfuseDouble
from tests.standin.llm_server import LLMServerProcess


@pytest.fixture(scope="session")
def standin_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMServerProcess]:
    """The real LLM server (xllamacpp + SmolLM2) on 127.0.0.1, shared by the whole session."""
    log = tmp_path_factory.mktemp("llm") / "llm-server.log"
    with LLMServerProcess(api_key=LLM_API_KEY, alias=SERVED_MODEL, log_path=log) as server:
        yield server


@pytest.fixture(scope="session")
def real_stack(
    standin_llm: LLMServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealStack]:
    """The real Langfuse stack (tests/realstack), configured by the role, one per session: the
    realstack tests of several files share it (it takes minutes to start)."""
    stack = RealStack(
        tmp_path_factory.mktemp("realstack"),
        LLMEndpoint(standin_llm.base_url, LLM_API_KEY, SERVED_MODEL),
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture
def langfuse_double() -> Iterator[Callable[..., LangfuseDouble]]:
    """Factory: ``langfuse_double(ingest_delay_s=..., drop_usage=...)`` returns a started double."""
    started: list[LangfuseDouble] = []

    def start(**config: object) -> LangfuseDouble:
        double = LangfuseDouble(DoubleConfig(**config)).start()  # type: ignore[arg-type]
        started.append(double)
        return double

    yield start
    for double in started:
        double.stop()


@pytest.fixture
def app_env_for(tmp_path: Path) -> Callable[..., Path]:
    """Write an app env file for a stand-in LLM server and a double (fields can be overridden)."""

    def write(llm: LLMServerProcess, double: LangfuseDouble, **overrides: str) -> Path:
        values = {
            "langfuse_base_url": double.base_url,
            "langfuse_public_key": double.config.public_key,
            "langfuse_secret_key": double.config.secret_key,
            "openai_base_url": llm.base_url,
        }
        values.update(overrides)
        return AppEnv(**values).write(tmp_path / "app.env")

    return write
