"""The pinned `ansible` package must bundle the collections requirements.yml promises."""

from __future__ import annotations

import json
from pathlib import Path

import ansible_collections
import yaml

REPO = Path(__file__).resolve().parents[1]


def bundled_version(fqcn: str) -> str:
    namespace, name = fqcn.split(".")
    root = Path(ansible_collections.__path__[0])
    manifest = json.loads((root / namespace / name / "MANIFEST.json").read_text())
    return manifest["collection_info"]["version"]


def test_requirements_yml_pins_exact_versions_that_the_venv_bundles():
    collections = yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    assert collections, "requirements.yml lists no collections"
    for entry in collections:
        version = str(entry["version"])
        assert version[0].isdigit(), f"{entry['name']}: pin an exact version, not {version!r}"
        assert bundled_version(entry["name"]) == version, (
            f"{entry['name']}: requirements.yml pins {version}, "
            f"the installed ansible bundles {bundled_version(entry['name'])}"
        )


def test_every_collection_used_by_the_code_is_listed():
    listed = {
        e["name"] for e in yaml.safe_load((REPO / "requirements.yml").read_text())["collections"]
    }
    used = set()
    for path in [*REPO.glob("roles/**/*.yml"), *REPO.glob("playbooks/*.yml"), REPO / "site.yml"]:
        for word in path.read_text().split():
            parts = word.rstrip(":").split(".")
            if len(parts) >= 3 and parts[0] in {"community", "ansible"} and parts[1] != "builtin":
                used.add(f"{parts[0]}.{parts[1]}")
    assert used - listed == set(), f"collections used but not in requirements.yml: {used - listed}"


def test_python_requirements_are_exact_pins():
    for name in ("requirements.txt", "requirements-model.txt", "requirements-realstack.txt"):
        for raw in (REPO / name).read_text().splitlines():
            line = raw.split("#")[0].strip()
            if line:
                assert "==" in line, f"{name}: {line!r} is not pinned with =="
