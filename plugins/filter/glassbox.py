"""Small rules the whole project shares, as filters (ansible.cfg: filter_plugins = plugins/filter).

Plain Python, unit-tested in tests/unit/test_glassbox_filters.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from typing import Any

WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")  # noqa: S104 - compared against, never bound


def credentials_dir(inventory_dir: str | None, inventory_sources: list[str] | None) -> str:
    """The controller directory for generated credentials: `credentials/` beside the inventory.

    The host's own inventory directory when Ansible knows it (a host listed in the inventory),
    else the first inventory source given with -i (a directory, or the directory of a file):
    the implicit localhost of the controller plays has no inventory_dir.
    """
    base = inventory_dir or ""
    if not base:
        sources = [s for s in (inventory_sources or []) if s]
        if not sources:
            raise ValueError("no inventory source: run ansible-playbook with -i <inventory>")
        first = sources[0]
        base = first if os.path.isdir(first) else os.path.dirname(first)
    return os.path.join(base, "credentials")


def probe_host(bind_address: str) -> str:
    """Where the host itself reaches a port published on bind_address."""
    return "127.0.0.1" if bind_address in WILDCARD_ADDRESSES else bind_address


def env_files(names: list[str], templates_dir: str, subdir: str = "env") -> list[dict]:
    """compose_project file specs for `<name>.env.j2` templates: rendered to <subdir>/<name>.env,
    0600, as secrets (env files hold the service's passwords and keys)."""
    return [
        {
            "src": f"{templates_dir}/{name}.env.j2",
            "dest": f"{subdir}/{name}.env" if subdir else f"{name}.env",
            "mode": "0600",
            "secret": True,
        }
        for name in names
    ]


VERSION = re.compile(r"\d+(\.\d+)+")
# What preflight_nvidia_smi says where nvidia-smi was not run (preflight tasks/nvidia_smi.yml).
NOT_ASKED = (
    "not asked: preflight found no NVIDIA GPU on this host's PCI bus (preflight_gpu_present is"
    " false), and nvidia-smi has nothing to answer about there"
)


def nvidia_smi(result: dict) -> dict:
    """What `nvidia-smi --query-gpu=driver_version,uuid,name --format=csv,noheader` said, from
    its registered command result: one line per GPU, fields separated by ", " (the name last, as
    it is the only field that may hold a comma).

    `answers` is true only when the command exited 0 and every line is a GPU with a driver
    version; `said` is its own words (stderr, stdout, or Ansible's message when it did not run)
    for a diagnosis. A skipped task (preflight found no NVIDIA GPU on the PCI bus, so nvidia-smi
    was not asked) does not answer, and `said` says so.
    """
    if result.get("skipped"):
        result = {"msg": NOT_ASKED}
    rc = result.get("rc")
    stdout = str(result.get("stdout") or "")
    gpus = []
    parsed = rc == 0
    for line in filter(None, (raw.strip() for raw in stdout.splitlines())):
        fields = [field.strip() for field in line.split(",", 2)]
        if len(fields) != 3 or not VERSION.fullmatch(fields[0]):
            parsed = False
            continue
        gpus.append({"driver_version": fields[0], "uuid": fields[1], "name": fields[2]})
    answers = parsed and bool(gpus)
    said = " ".join(p for p in (str(result.get("stderr") or "").strip(), stdout.strip()) if p)
    return {
        "answers": answers,
        "rc": rc,
        "gpus": gpus if answers else [],
        "driver_version": gpus[0]["driver_version"] if answers else "",
        "driver_branches": sorted(int(g["driver_version"].split(".")[0]) for g in gpus)
        if answers
        else [],
        "uuids": sorted(g["uuid"] for g in gpus) if answers else [],
        "said": said or str(result.get("msg") or "no output"),
    }


def file_differs(
    found: dict, content: str, spec: dict, owner: str = "root", group: str | None = None
) -> bool:
    """Whether a rendered file must go through the template module: `found` is the file's entry
    in ansible.builtin.find's result (get_checksum) or in host_probe's `files`, or {} when it is
    missing; `content` is the render on the controller; `spec` the compose_project file spec
    (mode, default 0640); the file belongs to `owner` and to the group `group` (default: the
    owner's name)."""
    if not found:
        return True
    want_mode = str(spec.get("mode", "0640"))
    return (
        found.get("checksum") != hashlib.sha1(content.encode("utf-8")).hexdigest()  # noqa: S324 - compared with find's checksum, which is sha1
        or int(str(found.get("mode", "0")), 8) != int(want_mode, 8)
        or found.get("pw_name") != owner
        or found.get("gr_name") != (owner if group is None else group)
    )


def local_path_differs(path: str, mode: str, content: str | None = None) -> bool:
    """On the controller (filters run there): whether `path` is not yet a directory with `mode`
    (content None) or a file holding exactly `content` with `mode`. Lets a converged run skip a
    delegated file/copy module call; a path that differs goes through the module as before."""
    try:
        info = os.stat(path)
        if content is None:
            return not stat.S_ISDIR(info.st_mode) or stat.S_IMODE(info.st_mode) != int(mode, 8)
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return True
    return data != content.encode("utf-8") or stat.S_IMODE(info.st_mode) != int(mode, 8)


def path_differs(
    found: dict, kind: str, mode: str, owner: str = "root", group: str | None = None
) -> bool:
    """Whether a path must go through the file module: `found` is its entry in host_probe's
    `paths` ({} when missing); it must be of type `kind` (stat's %F, e.g. "directory"), with
    `mode` (octal string, "0750" and "750" alike), owned by the user `owner` and the group
    `group` (default: the owner's name), as file_differs."""
    if not found:
        return True
    return (
        found.get("type") != kind
        or int(str(found.get("mode", "0")), 8) != int(str(mode), 8)
        or found.get("owner") != owner
        or found.get("group") != (owner if group is None else group)
    )


def host_probe(stdout: str) -> dict:
    """Parse the line records of a read-only host probe (one raw task; docker_engine's,
    compose_project's, host_firewall's, reverse_proxy's, apt_source's, glassbox_secrets',
    preflight's OS values):
    `pkg <dpkg Status-Abbrev>|<name>|<version>` (dpkg-query -W),
    `path <path>|<%F>|<%a>|<%U>|<%G>` (stat -c), `sha1 <hex> <path>` (sha1sum),
    `unit <is-active>|<is-enabled>` (systemctl), `compose <rc>|<first line>`, `volume <name>`
    (a Docker volume that exists), `value <name>|<text>` (any other one-line reading, e.g. an
    environment variable). Returns what the tasks compare with: `present` (packages dpkg
    has in any state but not-installed or config-files), `installed_specs` (each package
    installed without error as `name` and as `name=<version>`), `paths`, `sha1`, `unit`,
    `compose` (shaped like a command result: rc, stdout, stderr), `values` (name -> text,
    stripped), `volumes` (names) and `files`: each regular file as file_differs reads it (find's
    keys: checksum, mode, pw_name, gr_name; checksum empty when no sha1 line came)."""
    out: dict = {
        "present": [],
        "installed_specs": [],
        "paths": {},
        "sha1": {},
        "unit": [],
        "compose": {},
        "values": {},
        "volumes": [],
        "files": {},
    }
    for line in (stdout or "").splitlines():
        kind, _, rest = line.partition(" ")
        fields = rest.split("|")
        if kind == "pkg" and len(fields) == 3:
            status, name, version = fields
            if len(status) >= 2 and status[1] not in "nc":
                out["present"].append(name)
            if status == "ii ":
                out["installed_specs"] += [name, f"{name}={version}"]
        elif kind == "path" and len(fields) == 5:
            path, kind_name, mode, owner, group = fields
            out["paths"][path] = {"type": kind_name, "mode": mode, "owner": owner, "group": group}
        elif kind == "sha1":
            digest, _, path = rest.partition(" ")
            out["sha1"][path.strip().lstrip("*")] = digest
        elif kind == "unit" and len(fields) == 2:
            out["unit"] = fields
        elif kind == "compose" and len(fields) >= 2 and fields[0].isdigit():
            out["compose"] = {"rc": int(fields[0]), "stdout": "|".join(fields[1:]), "stderr": ""}
        elif kind == "value" and len(fields) >= 2 and fields[0]:
            out["values"][fields[0]] = "|".join(fields[1:]).strip()
        elif kind == "volume" and rest.strip():
            out["volumes"].append(rest.strip())
    for path, found in out["paths"].items():
        if found["type"] in ("regular file", "regular empty file"):
            out["files"][path] = {
                "checksum": out["sha1"].get(path, ""),
                "mode": found["mode"],
                "pw_name": found["owner"],
                "gr_name": found["group"],
            }
    return out


def probed_file(now: dict, path: str) -> dict:
    """One file of host_probe's `files` in the shape file_differs takes (checksum, mode, owner,
    group), or {} when the probe found no regular file with a sha1 there (missing, not a file,
    unreadable: file_differs then says it differs)."""
    found = ((now or {}).get("files") or {}).get(path) or {}
    return found if found.get("checksum") else {}


def host_addresses(names: list[str], hostvars: Any, var: str) -> list[str]:
    """The address each named host is reached at: its `var` when the inventory sets it, else
    ansible_host, else its inventory name (the same precedence as vllm_public_host's default)."""
    out = []
    for name in names or []:
        values = hostvars[name]
        address = values.get(var) or values.get("ansible_host") or name
        out.append(str(address))
    return out


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "glassbox_credentials_dir": credentials_dir,
            "glassbox_probe_host": probe_host,
            "glassbox_env_files": env_files,
            "glassbox_nvidia_smi": nvidia_smi,
            "glassbox_file_differs": file_differs,
            "glassbox_local_path_differs": local_path_differs,
            "glassbox_path_differs": path_differs,
            "glassbox_host_addresses": host_addresses,
            "glassbox_host_probe": host_probe,
            "glassbox_probed_file": probed_file,
        }
