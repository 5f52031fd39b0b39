"""docker_engine's decisions as plain Python, unit-tested in tests/unit/test_docker_engine_plan.py.

`docker_engine_compose_problem` judges Compose's answer (the probe's `compose` record or the
command's result); `docker_engine_todo` turns what the role's one host read found
(glassbox_host_probe's shape) into the list of things to change, so that a converged host skips
one include (tasks/changes.yml) instead of each task.
"""

from __future__ import annotations

import re
from typing import Any

# "v2.37.1", "5.0.2" or Debian 13's "2.26.1-4": the leading x.y(.z) counts.
VERSION = re.compile(r"^v?([0-9]+\.[0-9]+(?:\.[0-9]+)?)")


def compose_version(stdout: Any) -> str:
    """The version `docker compose version --short` printed ("2.26.1" of "2.26.1-4", "5.1.0" of
    "v5.1.0"), or '' when it printed none."""
    match = VERSION.match(str(stdout or "").strip())
    return match.group(1) if match else ""


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def compose_problem(result: Any, minimum: str) -> str:
    """'' when `result` (rc, stdout, stderr of `docker compose version --short`) reports Compose
    `minimum` or newer; else the message that says what it answered and what is needed."""
    result = result or {}
    rc = result.get("rc", 1)
    version = compose_version(result.get("stdout"))
    if rc == 0 and version and _numbers(version) >= _numbers(str(minimum)):
        return ""
    said = f"{result.get('stdout') or ''} {result.get('stderr') or ''}".strip()
    return (
        f"`docker compose version --short` must report Compose {minimum} or newer (the minimum of"
        f" community.docker's docker_compose_v2 modules); it answered rc={rc}: {said}."
        " Check that the `docker` CLI and its Compose plugin are installed."
    )


def problems(settings: dict) -> list[str]:
    """The input checks against the host, as messages (empty: all good). `settings`: `source`
    (resolved), `distribution_packages` (this OS's), `os` (name and version), `users`,
    `known_users` (getent passwd's names), `tls` and `daemon_options`."""
    out = []
    if settings.get("source") == "distribution" and not settings.get("distribution_packages"):
        out.append(
            f"docker_engine_source=distribution is not possible on {settings.get('os')}: its"
            " packages have no Compose v2. Use docker_engine_source: docker (or auto)."
        )
    known = settings.get("known_users") or {}
    missing = [user for user in settings.get("users") or [] if user not in known]
    if missing:
        out.append(f"docker_engine_users names users that do not exist: {', '.join(missing)}")
    address = (settings.get("daemon_options") or {}).get("ip", "127.0.0.1")
    if settings.get("tls") and address != "127.0.0.1":
        out.append(
            f'docker_engine_daemon_options.ip is "{address or ""}" but glassbox_tls is true:'
            " container ports publish on 127.0.0.1 only and the TLS proxy listens on the public"
            " addresses. Remove the ip option, or set glassbox_tls: false."
        )
    return out


def todo(now: dict, wanted: dict) -> list[str]:
    """What differs on the host, from the probe (`now`) and `wanted`: `remove` (a package of
    `wanted['conflicts']` is present), `install` (one of `wanted['packages']`, "name" or
    "name=version", is not installed so), `dir` and `daemon_json` (`wanted`'s booleans, worked
    out with glassbox_path_differs and glassbox_file_differs), `service` (not active and
    enabled), `compose` (its answer is not good enough: compose_problem), `users` (one of
    `wanted['users']` is not a member of the docker group, value record `docker_members`).
    Empty: nothing to change."""
    now = now or {}
    members = str((now.get("values") or {}).get("docker_members") or "").split(",")
    checks = {
        "remove": any(name in (now.get("present") or []) for name in wanted.get("conflicts") or []),
        "install": any(
            spec not in (now.get("installed_specs") or []) for spec in wanted.get("packages") or []
        ),
        "dir": bool(wanted.get("dir")),
        "daemon_json": bool(wanted.get("daemon_json")),
        "service": list(now.get("unit") or []) != ["active", "enabled"],
        "compose": compose_problem(now.get("compose"), wanted.get("compose_min", "")) != "",
        "users": any(user not in members for user in wanted.get("users") or []),
    }
    return [name for name, differs in checks.items() if differs]


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "docker_engine_compose_problem": compose_problem,
            "docker_engine_problems": problems,
            "docker_engine_todo": todo,
        }
