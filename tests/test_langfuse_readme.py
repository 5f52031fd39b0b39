"""The langfuse role's README table, argument_specs and defaults name exactly the same variables."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parent.parent / "roles" / "langfuse"


def spec_options() -> set[str]:
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    return set(specs["argument_specs"]["main"]["options"])


def readme_table_variables() -> set[str]:
    text = (ROLE / "README.md").read_text()
    return set(re.findall(r"^\|\s*`(langfuse_[a-z0-9_]+)`\s*\|", text, flags=re.MULTILINE))


def test_readme_table_matches_argument_specs():
    spec, readme = spec_options(), readme_table_variables()
    assert spec - readme == set(), "in argument_specs, missing from the README table"
    assert readme - spec == set(), "in the README table, missing from argument_specs"


def test_defaults_match_argument_specs():
    defaults = set(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()))
    assert defaults == spec_options()


def test_argument_spec_defaults_agree_with_defaults_file():
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    for name, option in specs["argument_specs"]["main"]["options"].items():
        if "default" in option:
            assert option["default"] == defaults[name], name
