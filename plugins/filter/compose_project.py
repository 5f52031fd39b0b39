"""compose_project's decisions (roles/compose_project), as filters.

The role reads the host once (a shell probe parsed by glassbox_host_probe); these filters turn
that reading and the spec into what the role must do, so a converged project runs no task but
the probe and the plan. Plain Python, unit-tested in tests/unit/test_compose_project_plan.py.

`compose_project_plan`: what differs (directories, renders, obsolete files, missing volumes,
whether the stamp says the render was validated) and whether anything must be done at all.
`compose_project_stamp`: the content of `.compose-validated`, the record of what
`docker compose config --quiet` last passed.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

STAMP_FILE = ".compose-validated"
SUBDIR_MODE = "0700"


def _glassbox() -> ModuleType:
    """The shared comparisons of glassbox.py, beside this file (filter plugins are loaded by
    path, not as a package, so a plain import cannot reach them)."""
    path = Path(__file__).with_name("glassbox.py")
    spec = importlib.util.spec_from_file_location("glassbox_filters_for_compose_project", path)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships with this one
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SHARED = _glassbox()


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()  # noqa: S324 - compared with sha1sum's output, not a security use


def subdirs(files: list[dict]) -> list[str]:
    """The subdirectories (relative) that rendered files sit in, each once, in order."""
    out: list[str] = []
    for item in files or []:
        parent = str(Path(str(item["dest"])).parent)
        if parent not in (".", "") and parent not in out:
            out.append(parent)
    return out


def stamp(now: dict, spec: dict, written: list[dict] | None = None) -> str:
    """What `.compose-validated` holds once `docker compose config --quiet` passed: the sha1 of
    Compose's version (rc and first line, as the probe read it), the project's name and Compose
    file, and the sha1 of every render (spec: name, dir, compose_file, files, as for `plan`).
    A render the template module wrote in this run takes its sha1 from the module's result
    (`written`: the render loops' results, of which the changed ones count; in check mode there
    is no sha1, and any value other than the old one will do); every other file matched its
    render, so the probe's sha1 is the render's."""
    compose = (now or {}).get("compose") or {}
    found = (now or {}).get("files") or {}
    project_dir = str(spec["dir"])
    lines = [
        f"compose {compose.get('rc', '')}|{compose.get('stdout', '')}",
        f"project {spec['name']} file {spec.get('compose_file', 'compose.yaml')}",
    ]
    changed = [r for r in written or [] if r.get("changed")]
    for item in spec.get("files") or []:
        dest = item["dest"]
        results = [r for r in changed if (r.get("item") or {}).get("dest") == dest]
        if results:
            checksum = results[0].get("checksum", "written")
        else:
            checksum = (found.get(f"{project_dir}/{dest}") or {}).get("checksum", "")
        lines.append(f"{checksum}  {dest}")
    return _sha1("\n".join(lines) + "\n") + "\n"


def unvalidated(now: dict, spec: dict, written: list[dict] | None = None) -> bool:
    """Whether the stamp on the host differs from the one this render would get, i.e. whether
    `docker compose config --quiet` must run (a render that failed it is validated again)."""
    on_host = ((now or {}).get("sha1") or {}).get(f"{spec['dir']}/{STAMP_FILE}", "")
    return on_host != _sha1(stamp(now, spec, written))


def plan(
    now: dict,
    spec: dict,
    renders: list[str] | None = None,
    check_mode: bool = False,
    docker: bool = True,
) -> dict[str, Any]:
    """What compose_project must do, from the probe's reading `now` (glassbox_host_probe) and the
    spec: {name, dir, dir_mode, compose_file, files, absent_files, volumes, state, purge}.
    `renders` holds the controller's render of each of spec.files, in order. With `docker`
    false (the render entry point) only directories and files count.

    Returns `dir` (the project directory differs), `subdirs`, `secret_files`, `other_files`
    (the file specs whose render, mode or owner differ), `remove` (obsolete files present),
    `validate` (the stamp differs: `compose config` before any render), `volumes` (Compose keys
    of missing named volumes), `start` (state started: pull, up and the readiness probes always
    run), `absent` with `compose_file_found`, `first_check_run` (check mode on a host the
    project was never rendered on: nothing to validate, no volume to create, Docker perhaps not
    installed yet) and `any`: whether anything must run at all."""
    now = now or {}
    paths = now.get("paths") or {}
    found = now.get("files") or {}
    project_dir = str(spec["dir"])
    compose_file = str(spec.get("compose_file", "compose.yaml"))
    files = list(spec.get("files") or [])
    state = str(spec.get("state", "started")) if docker else "configured"
    if state == "absent":
        present = project_dir in paths
        return {
            "absent": True,
            "compose_file_found": f"{project_dir}/{compose_file}" in paths,
            "any": present or bool(spec.get("purge")),
        }
    renders = list(renders or [])
    if len(renders) != len(files):
        raise ValueError(f"{len(files)} files in the spec but {len(renders)} renders")
    first_check_run = bool(check_mode) and f"{project_dir}/{compose_file}" not in found
    differing = [
        item
        for item, content in zip(files, renders, strict=True)
        if _SHARED.file_differs(found.get(f"{project_dir}/{item['dest']}") or {}, content, item)
    ]
    out: dict[str, Any] = {
        "absent": False,
        "dir": _SHARED.path_differs(
            paths.get(project_dir) or {}, "directory", str(spec.get("dir_mode", "0750"))
        ),
        "subdirs": [
            sub
            for sub in subdirs(files)
            if _SHARED.path_differs(
                paths.get(f"{project_dir}/{sub}") or {}, "directory", SUBDIR_MODE
            )
        ],
        "secret_files": [item for item in differing if item.get("secret")],
        "other_files": [item for item in differing if not item.get("secret")],
        "remove": [
            rel for rel in spec.get("absent_files") or [] if f"{project_dir}/{rel}" in paths
        ],
        "validate": False,
        "volumes": [],
        "start": False,
        "first_check_run": first_check_run,
    }
    if docker and not first_check_run:
        name = str(spec["name"])
        existing = set(now.get("volumes") or [])
        out["volumes"] = [v for v in spec.get("volumes") or [] if f"{name}_{v}" not in existing]
        out["validate"] = unvalidated(now, spec)
    out["start"] = docker and state == "started"
    out["any"] = bool(
        out["dir"]
        or out["subdirs"]
        or differing
        or out["remove"]
        or out["validate"]
        or out["volumes"]
        or out["start"]
    )
    return out


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "compose_project_plan": plan,
            "compose_project_stamp": stamp,
            "compose_project_subdirs": subdirs,
            "compose_project_unvalidated": unvalidated,
        }
