"""Fixtures of the glassbox smoke suite: settings, the Langfuse client, a traced OpenAI client.

Settings come from the app env file the deployment writes (playbooks/connect.yml), or the file
named by GLASSBOX_ENV_FILE; environment variables of the same names override it. With nothing
configured the run stops before collecting anything, with one line saying how to configure it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import glassbox_smoke as gs
import httpx
import pytest

SETTINGS_KEY = pytest.StashKey[gs.Settings]()


def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = gs.load_settings()
    except gs.ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    # Before any client exists: httpx and requests read the CA settings when they are built.
    gs.export_trust(settings)
    config.stash[SETTINGS_KEY] = settings


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash[SETTINGS_KEY]
    return (
        f"glassbox smoke: settings from {settings.source}; Langfuse {settings.langfuse_base_url}; "
        f"vLLM {settings.openai_base_url} model {settings.model}; "
        f"deadline {settings.deadline_s:g} s"
        + "".join(f"; {key}={value}" for key, value in settings.trust[:1])
    )


@pytest.fixture(scope="session")
def settings(pytestconfig: pytest.Config) -> gs.Settings:
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def rejections() -> Iterator[gs.Rejections]:
    """What Langfuse web rejected (see gs.Rejections); emptied before every test."""
    collector = gs.Rejections()
    collector.attach()
    yield collector
    collector.detach()


@pytest.fixture(autouse=True)
def _fresh_rejections(request: pytest.FixtureRequest) -> None:
    if "rejections" in request.fixturenames or "langfuse" in request.fixturenames:
        request.getfixturevalue("rejections").clear()


@pytest.fixture(scope="session")
def langfuse(settings: gs.Settings, rejections: gs.Rejections) -> Iterator[Any]:
    """The one Langfuse client of this process; `@observe` and langfuse.openai find it."""
    # The SDK's helpers (get_client, langfuse.openai) read these when they build a client.
    os.environ["LANGFUSE_PUBLIC_KEY"] = settings.langfuse_public_key
    os.environ["LANGFUSE_SECRET_KEY"] = settings.langfuse_secret_key
    os.environ["LANGFUSE_BASE_URL"] = settings.langfuse_base_url
    from langfuse import Langfuse  # noqa: PLC0415 - import after the environment is set

    # The SDK's REST calls (scores, projects) go through this client, so rejections are seen.
    http = httpx.Client(timeout=10.0, event_hooks={"response": [rejections.on_response]})
    client = Langfuse(
        public_key=settings.langfuse_public_key,
        secret_key=settings.langfuse_secret_key,
        base_url=settings.langfuse_base_url,
        httpx_client=http,
    )
    yield client
    client.shutdown()
    http.close()


@pytest.fixture(scope="session")
def langfuse_reader(
    settings: gs.Settings, langfuse: Any, rejections: gs.Rejections
) -> Iterator[gs.LangfuseReader]:
    reader = gs.LangfuseReader(settings, langfuse, rejections)
    yield reader
    reader.close()


@pytest.fixture(scope="session")
def langfuse_ready(settings: gs.Settings, langfuse_reader: gs.LangfuseReader) -> None:
    """Fail fast (before any polling) when Langfuse is down or the keys are wrong."""
    try:
        response = langfuse_reader.get("/api/public/projects", {})
    except httpx.TransportError as exc:
        pytest.fail(gs.langfuse_unreachable(settings, exc), pytrace=False)
    if response.status_code != 200:
        pytest.fail(
            f"Langfuse ERROR: GET /api/public/projects answered {response.status_code}: "
            f"{response.text[:200]}. Check the langfuse-web logs.",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def vllm_ready(settings: gs.Settings) -> None:
    """Fail fast when vLLM is down or rejects the key."""
    gs.get_vllm_models(settings)


@pytest.fixture(scope="session")
def llm(settings: gs.Settings, langfuse: Any, vllm_ready: None, langfuse_ready: None) -> Any:
    """An OpenAI client traced by Langfuse, as an application would use it."""
    from langfuse.openai import OpenAI  # noqa: PLC0415 - needs the Langfuse client first

    return OpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
        max_retries=0,
        timeout=120.0,
    )
