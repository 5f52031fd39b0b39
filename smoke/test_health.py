"""Component health, one test each: vLLM is up and serves the model; Langfuse is a 4.x new
enough for the pinned SDK; keys work.

Each failure names the component and where to look, so a red run reads as a to-do list.
"""

from __future__ import annotations

from typing import Any

import glassbox_smoke as gs
import httpx
import pytest


def test_vllm_health(settings: gs.Settings) -> None:
    """vLLM's /health answers 200 (base URL = OPENAI_BASE_URL without /v1)."""
    response = gs.get_vllm_health(settings)
    assert response.status_code == 200, (
        f"vLLM UNHEALTHY: GET {settings.vllm_root}/health answered {response.status_code}. "
        "The engine is not ready (model still loading, or crashed): check the vllm container logs."
    )


def test_vllm_lists_served_model(settings: gs.Settings) -> None:
    """/v1/models, called with the API key, lists GLASSBOX_MODEL."""
    response = gs.get_vllm_models(settings)
    assert response.status_code == 200, (
        f"vLLM ERROR: GET /v1/models answered {response.status_code}: {response.text[:200]}"
    )
    served = [model["id"] for model in response.json().get("data", [])]
    assert settings.model in served, (
        f"vLLM MODEL: GLASSBOX_MODEL={settings.model!r} is not served; vLLM lists {served}. "
        "Check --served-model-name in the vllm role and GLASSBOX_MODEL in the app env file."
    )


def test_langfuse_health_is_v4_with_database(settings: gs.Settings) -> None:
    """Langfuse web health reports status OK, version 4.x at least as new as the pinned SDK
    needs (gs.SERVER_MINIMUM_FOR_SDK), with its database reachable."""
    url = f"{settings.langfuse_base_url}/api/public/health"
    try:
        response = httpx.get(url, params={"failIfDatabaseUnavailable": "true"}, timeout=10.0)
    except httpx.TransportError as exc:
        pytest.fail(gs.langfuse_unreachable(settings, exc), pytrace=False)
    assert response.status_code == 200, (
        f"Langfuse UNHEALTHY: GET {url}?failIfDatabaseUnavailable=true answered "
        f"{response.status_code} ({response.text[:200]}): web cannot reach PostgreSQL. "
        "Check the postgres container and DATABASE_URL of langfuse-web."
    )
    body = response.json()
    assert body.get("status") == "OK", f"Langfuse UNHEALTHY: health says {body}"
    version = str(body.get("version", ""))
    assert version.startswith("4."), (
        f"Langfuse VERSION: the server reports {version!r}, this stack needs Langfuse 4.x "
        "(the suite reads traces through the v4 API). Check the langfuse image tag."
    )
    too_old = gs.server_too_old(version, gs.sdk_version())
    assert too_old is None, too_old


def test_langfuse_keys_authenticate(settings: gs.Settings, langfuse: Any) -> None:
    """The project's public/secret keys authenticate (`auth_check`, GET /api/public/projects)."""
    try:
        authenticated = langfuse.auth_check()
    except httpx.TransportError as exc:
        pytest.fail(gs.langfuse_unreachable(settings, exc), pytrace=False)
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        if status in {401, 403}:
            pytest.fail(gs.langfuse_bad_keys(settings, status, str(exc)), pytrace=False)
        pytest.fail(
            f"Langfuse AUTH: auth_check() failed with {type(exc).__name__}: {exc}",
            pytrace=False,
        )
    assert authenticated, "Langfuse AUTH: auth_check() returned False"
