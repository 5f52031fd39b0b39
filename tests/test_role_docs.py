"""Every role documents exactly the variables its argument specs accept, with their defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ROLES = sorted(p.parent.parent.name for p in REPO.glob("roles/*/meta/argument_specs.yml"))
ROW = re.compile(r"^\|\s*`([a-z][a-z0-9_]*)`\s*\|")


def variables_section(readme: Path) -> list[str]:
    """The lines under the README's `## Variables` heading, up to the next heading."""
    lines = readme.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "## Variables"), None)
    assert start is not None, f"{readme} has no '## Variables' section"
    section = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        section.append(line)
    return section


def spec_options(role: str) -> dict[str, dict]:
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options: dict[str, dict] = {}
    for entry in specs["argument_specs"].values():
        options.update(entry.get("options") or {})
    return options


def test_every_role_has_specs():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles == ROLES, "a role without meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_readme_variables_table_matches_argument_specs(role):
    readme = REPO / "roles" / role / "README.md"
    assert readme.is_file(), f"roles/{role}/README.md is missing"
    documented = {m.group(1) for line in variables_section(readme) if (m := ROW.match(line))}
    accepted = set(spec_options(role))
    assert documented - accepted == set(), (
        f"README documents unknown variables: {documented - accepted}"
    )
    assert accepted - documented == set(), f"README lacks variables: {accepted - documented}"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_spec_defaults(role):
    defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    options = spec_options(role)
    for name, value in defaults.items():
        assert name in options, f"{role}: defaults/main.yml has {name}, argument_specs does not"
        assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"
        if "default" in options[name]:
            assert options[name]["default"] == value, (
                f"{role}: {name} defaults to {value!r} in defaults/main.yml "
                f"but {options[name]['default']!r} in argument_specs"
            )


@pytest.mark.parametrize("role", ROLES)
def test_every_public_default_has_a_comment(role):
    defaults_file = REPO / "roles" / role / "defaults" / "main.yml"
    if not defaults_file.exists():
        pytest.fail(f"{role}: defaults/main.yml is missing")
    previous = ""
    for line in defaults_file.read_text().splitlines():
        if re.match(r"^[a-z][a-z0-9_]*:", line):
            assert previous.startswith("#"), f"{role}: {line.split(':')[0]} has no comment above it"
        if line.strip():
            previous = line.strip()
