"""Settings loading of the smoke suite (smoke/glassbox_smoke.py), without any server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.standin.harness import REPO_ROOT

FULL = {
    "LANGFUSE_PUBLIC_KEY": "pk-lf-1",
    "LANGFUSE_SECRET_KEY": "sk-lf-1",
    "LANGFUSE_BASE_URL": "http://lf:3000/",
    "OPENAI_BASE_URL": "http://gpu:8000/v1",
    "OPENAI_API_KEY": "vllm-1",
    "GLASSBOX_MODEL": "m",
}


@pytest.fixture(scope="module")
def gs() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "glassbox_smoke_under_test", REPO_ROOT / "smoke" / "glassbox_smoke.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_environment_alone_is_enough(gs: ModuleType, tmp_path: Path) -> None:
    settings = gs.load_settings({**FULL, "GLASSBOX_ENV_FILE": ""})
    assert settings.langfuse_base_url == "http://lf:3000"
    assert settings.vllm_root == "http://gpu:8000"
    assert (settings.deadline_s, settings.max_latency_ms) == (120.0, 5000.0)
    assert (settings.min_length, settings.good_length) == (20, 100)
    assert "sk-lf-1" not in repr(settings)
    assert "vllm-1" not in repr(settings)


def test_file_then_environment_override(gs: ModuleType, tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    lines = [f"{k}={v}" for k, v in FULL.items() if k != "LANGFUSE_BASE_URL"]
    lines += ["# comment", "", "export LANGFUSE_HOST='http://old-host:3000'"]
    lines += ['GLASSBOX_SMOKE_DEADLINE="7"']
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = gs.load_settings({"GLASSBOX_ENV_FILE": str(env_file), "GLASSBOX_MODEL": "other"})
    assert settings.langfuse_base_url == "http://old-host:3000"  # LANGFUSE_HOST fallback
    assert settings.model == "other"
    assert settings.deadline_s == 7.0
    assert settings.source == str(env_file)


def test_partial_configuration_names_what_is_missing(gs: ModuleType) -> None:
    partial = {k: v for k, v in FULL.items() if k not in {"OPENAI_API_KEY", "GLASSBOX_MODEL"}}
    with pytest.raises(gs.ConfigError, match="OPENAI_API_KEY, GLASSBOX_MODEL missing"):
        gs.load_settings(partial)


def test_bad_number_is_reported(gs: ModuleType) -> None:
    with pytest.raises(gs.ConfigError, match="GLASSBOX_SMOKE_DEADLINE='soon'"):
        gs.load_settings({**FULL, "GLASSBOX_SMOKE_DEADLINE": "soon"})


def test_nothing_configured_is_one_line(gs: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(gs.ConfigError) as raised:
        gs.load_settings({"GLASSBOX_ENV_FILE": str(tmp_path / "missing.env")})
    assert "\n" not in str(raised.value)
    assert "does not exist" in str(raised.value)


@pytest.mark.parametrize(
    ("server", "sdk", "verdict"),
    [
        ("4.16.0", "4.18.0", None),
        ("4.59.0", "4.18.0", None),
        ("4.15.9", "4.18.0", "the server is 4.15.9, older than 4.16.0"),
        ("4.16.0", "5.0.4", "the server is 4.16.0, older than 4.59.0"),
        ("4.58.3", "5.0.4", "the server is 4.58.3, older than 4.59.0"),
        ("4.59.0", "5.0.4", None),
        ("4.100.1", "5.0.4", None),
    ],
)
def test_server_floor_of_the_pinned_sdk(
    gs: ModuleType, server: str, sdk: str, verdict: str | None
) -> None:
    message = gs.server_too_old(server, sdk)
    if verdict is None:
        assert message is None
    else:
        assert verdict in message
        assert f"SDK {sdk}" in message


def test_unknown_sdk_major_is_reported(gs: ModuleType) -> None:
    assert "SDK 6.0.0" in gs.server_too_old("4.59.0", "6.0.0")
