"""Shared helpers for the testinfra checks of the default scenario."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def host_secrets(host):
    """Every value from every /etc/glassbox/*/secrets.json on the target, by file."""
    found = host.run("find /etc/glassbox -name secrets.json -type f")
    secrets = {}
    with host.sudo():
        for path in found.stdout.split():
            secrets[path] = json.loads(host.file(path).content_string)
    return secrets
