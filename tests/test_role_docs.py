"""Every role documents exactly the variables its argument specs accept (README tables are
generated from them), and its defaults file agrees with them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ROLES = sorted(p.parent.parent.name for p in REPO.glob("roles/*/meta/argument_specs.yml"))


def spec_options(role: str) -> dict[str, dict]:
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options: dict[str, dict] = {}
    for entry in specs["argument_specs"].values():
        options.update(entry.get("options") or {})
    return options


def test_every_role_has_specs():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles == ROLES, "a role without meta/argument_specs.yml"


def test_readme_variables_tables_are_generated_from_argument_specs():
    """One check for every role: each README's table is what scripts/role_docs.py writes."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "role_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


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


SHARED = ("glassbox_tls", "glassbox_tls_source", "glassbox_public_host", "glassbox_tls_dir")


def test_shared_tls_variables_are_declared_alike_in_every_role():
    """Issue 12's inventory-level variables mean one thing: every role that declares one in its
    argument specs declares it with the same type, default and choices."""
    seen: dict[str, tuple[str, dict]] = {}
    for role in ROLES:
        specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
        for entry in specs["argument_specs"].values():
            for name in SHARED:
                spec = (entry.get("options") or {}).get(name)
                if spec is None:
                    continue
                shape = {k: spec.get(k) for k in ("type", "default", "choices", "elements")}
                first = seen.setdefault(name, (role, shape))
                assert shape == first[1], f"{name}: {role} says {shape}, {first[0]} {first[1]}"
    assert "glassbox_tls" in seen, "no role declares glassbox_tls"
