"""Glue between the stand-in stack and `pytest smoke`: the app env file and a subprocess run."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVED_MODEL = "glassbox-smollm2"
LLM_API_KEY = "sk-vllm-standin-0123456789abcdef"
# Variables the smoke suite reads; stripped from the inherited environment so a developer's own
# settings never leak into a test run.
SMOKE_VARIABLES = (
    "GLASSBOX_ENV_FILE",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_BASE_URL",
    "LANGFUSE_HOST",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "GLASSBOX_MODEL",
    "GLASSBOX_SMOKE_DEADLINE",
    "GLASSBOX_SMOKE_MAX_LATENCY_MS",
    "GLASSBOX_SMOKE_MIN_LENGTH",
    "GLASSBOX_SMOKE_GOOD_LENGTH",
)


@dataclass(frozen=True)
class AppEnv:
    langfuse_base_url: str
    langfuse_public_key: str
    langfuse_secret_key: str
    openai_base_url: str
    openai_api_key: str = LLM_API_KEY
    model: str = SERVED_MODEL

    def write(self, path: Path) -> Path:
        """Write the file as playbooks/connect.yml does: KEY=value lines, mode 0600."""
        lines = {
            "LANGFUSE_PUBLIC_KEY": self.langfuse_public_key,
            "LANGFUSE_SECRET_KEY": self.langfuse_secret_key,
            "LANGFUSE_BASE_URL": self.langfuse_base_url,
            "LANGFUSE_HOST": self.langfuse_base_url,
            "OPENAI_BASE_URL": self.openai_base_url,
            "OPENAI_API_KEY": self.openai_api_key,
            "GLASSBOX_MODEL": self.model,
        }
        path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()), encoding="utf-8")
        path.chmod(0o600)
        return path


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SMOKE_VARIABLES}
    env.pop("PYTEST_ADDOPTS", None)
    env.update(extra)
    return env


def run_smoke(
    *node_ids: str,
    options: tuple[str, ...] = (),
    env_file: Path | None,
    deadline_s: float | None = None,
    timeout: float = 240,
    smoke_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pytest <args or the smoke dir>` in a child process, as a user would.

    Without node ids the whole suite runs; `options` go to pytest as they are.
    """
    extra = dict(extra_env or {})
    if env_file is not None:
        extra["GLASSBOX_ENV_FILE"] = str(env_file)
    if deadline_s is not None:
        extra["GLASSBOX_SMOKE_DEADLINE"] = str(deadline_s)
    target = smoke_dir or REPO_ROOT / "smoke"
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options]
    argv += list(node_ids) or [str(target)]
    return subprocess.run(
        argv,
        cwd=target.parent,
        env=clean_env(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
