#!/usr/bin/env python3
"""Write each role's README variables table from its meta/argument_specs.yml.

The table sits between `<!-- argument_specs:begin -->` and `<!-- argument_specs:end -->` under the
README's `## Variables` heading. Nested options are rows of their own (`parent[].child`, or
`parent.child` for a dict). argument_specs is the one source: its descriptions are the table's
text, so a variable documented differently in two places cannot happen.

    scripts/role_docs.py           rewrite the tables
    scripts/role_docs.py --check   exit 1 and name the READMEs that are out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BEGIN = "<!-- argument_specs:begin -->"
END = "<!-- argument_specs:end -->"
MARKERS = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)


def _default(spec: dict) -> str:
    if spec.get("required"):
        return "(required)"
    if "default" not in spec:
        return ""
    value = spec["default"]
    text = value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, str) and (value == "" or value.strip() != value):
        text = json.dumps(value)
    return f"`{text}`".replace("|", "\\|")


def _type(spec: dict) -> str:
    kind = spec.get("type", "str")
    if kind == "list" and spec.get("elements"):
        kind = f"list of {spec['elements']}"
    if spec.get("choices"):
        kind += ": " + ", ".join(str(c) for c in spec["choices"])
    return kind


def _description(spec: dict) -> str:
    text = spec.get("description", "")
    if isinstance(text, list):
        text = " ".join(text)
    return " ".join(str(text).split()).replace("|", "\\|")


def rows(options: dict, prefix: str = "") -> list[str]:
    out = []
    for name, given in options.items():
        spec = given or {}
        out.append(
            f"| `{prefix}{name}` | {_type(spec)} | {_default(spec)} | {_description(spec)} |"
        )
        if spec.get("options"):
            joiner = "[]." if spec.get("type") == "list" else "."
            out += rows(spec["options"], f"{prefix}{name}{joiner}")
    return out


def options_of(role: Path) -> dict:
    """Every entry point's options, main first (entry points share names, never meanings)."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    merged: dict = {}
    for entry in sorted(specs, key=lambda e: e != "main"):
        for name, spec in (specs[entry].get("options") or {}).items():
            merged.setdefault(name, spec)
    return merged


def table(role: Path) -> str:
    lines = [
        "| variable | type | default | meaning |",
        "|---|---|---|---|",
        *rows(options_of(role)),
    ]
    return "\n".join([BEGIN, *lines, END])


def updated(readme: Path, role: Path) -> str:
    text = readme.read_text()
    if not MARKERS.search(text):
        raise SystemExit(f"{readme}: no {BEGIN} ... {END} block under '## Variables'")
    return MARKERS.sub(lambda _m: table(role), text, count=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale READMEs")
    args = parser.parse_args()
    stale = []
    for spec in sorted(REPO.glob("roles/*/meta/argument_specs.yml")):
        role = spec.parent.parent
        readme = role / "README.md"
        new = updated(readme, role)
        if new != readme.read_text():
            stale.append(str(readme.relative_to(REPO)))
            if not args.check:
                readme.write_text(new)
    if stale and args.check:
        print("out of date (run scripts/role_docs.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    for name in stale:
        print(f"rewrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
