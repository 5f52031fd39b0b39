"""Docs never hand operators a `docker compose config` that prints the secrets.

Compose reads env_file values into the output of a plain `docker compose config`: the vLLM API
key, the Langfuse keys and store passwords. Every command the READMEs show must keep them out
(--quiet/-q, --no-interpolate, --services, --images, --help), or stand in a sentence that warns.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted(REPO.glob("roles/*/README.md")), REPO / "smoke" / "README.md"]
SPAN = re.compile(r"`([^`]*\bdocker[ -]compose\b[^`]*\bconfig\b[^`]*)`")
SAFE = re.compile(r"(^|\s)(--quiet|-q|--no-interpolate|--services|--images|--help)(\s|$)")
WARNING = "prints every"


def test_every_compose_config_command_keeps_secrets_out():
    offenders = []
    for doc in DOCS:
        if not doc.is_file():
            continue
        lines = doc.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            for command in SPAN.findall(line):
                if SAFE.search(command):
                    continue
                context = " ".join(lines[number - 1 : number + 1])
                if WARNING in context:
                    continue
                offenders.append(f"{doc.relative_to(REPO)}:{number}: {command}")
    assert not offenders, "docs show `docker compose config` that prints secrets:\n" + "\n".join(
        offenders
    )


def test_the_readme_warns_where_it_explains_inspection():
    text = (REPO / "README.md").read_text()
    assert "prints every value" in text
    assert "config --no-interpolate --no-env-resolution" in text
