"""Caddy site plan: check a site spec and derive what the site file and the firewall need.

Plain Python so the rules are unit-tested in milliseconds (tests/unit/test_reverse_proxy_plan.py);
the role calls them as the filters `reverse_proxy_site_specs`, `reverse_proxy_sites_problems`,
`reverse_proxy_site_problems`, `reverse_proxy_address`, `reverse_proxy_ports`, and, on what the
role's host probe read (glassbox_host_probe's shape), `reverse_proxy_prune` and
`reverse_proxy_sites_removals` (glassbox_probed_file reads one file of it).
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from typing import Any

# A key Caddy's header matcher compares literally: no spaces or quotes (Caddyfile tokens), no
# braces (placeholders), no '*' (the header matcher compares exactly, but a leading or trailing
# '*' is a wildcard: caddyserver.com/docs/modules/http.matchers.header).
KEY_PATTERN = re.compile(r"[A-Za-z0-9._~+/=-]+")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
UPSTREAM_PATTERN = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")
PATH_PATTERN = re.compile(r"/[A-Za-z0-9._~/*-]*")


def _port(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def site_problems(site: dict[str, Any], v: str = "reverse_proxy_site") -> list[str]:
    """Every rule of one site spec that the argument spec cannot express, as messages naming
    the field (`<v>.<field>`, e.g. `reverse_proxy_sites[1].port`)."""
    out: list[str] = []
    name = str(site.get("name", ""))
    if not NAME_PATTERN.fullmatch(name):
        out.append(
            f'{v}.name is "{name}": allowed lower-case letters, digits, "-" and "_" '
            "(it names the file sites.d/<name>.caddy)."
        )
    port = _port(site.get("port"))
    if not 1 <= port <= 65535:
        out.append(f"{v}.port is {site.get('port')}: allowed 1-65535.")
    upstream = str(site.get("upstream", ""))
    upstream_port = _port(upstream.rsplit(":", 1)[-1])
    if not UPSTREAM_PATTERN.fullmatch(upstream) or not 1 <= upstream_port <= 65535:
        out.append(
            f'{v}.upstream is "{upstream}": allowed host:port (e.g. 127.0.0.1:3000), '
            "the service's loopback address."
        )
    key = str(site.get("bearer_key") or "")
    if key and not KEY_PATTERN.fullmatch(key):
        out.append(
            f"{v}.bearer_key (the service's API key) has characters the proxy cannot compare "
            "literally: allowed A-Z a-z 0-9 and . _ ~ + / = - (no spaces, quotes, braces or *)."
        )
    for path in site.get("bearer_paths") or []:
        if not PATH_PATTERN.fullmatch(str(path)):
            out.append(
                f'{v}.bearer_paths has "{path}": allowed absolute paths of letters, digits and '
                ". _ ~ / - with * as a wildcard (e.g. /v1/*)."
            )
    for cidr in site.get("metrics_cidrs") or []:
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            out.append(
                f'{v}.metrics_cidrs has "{cidr}", not an IP network: allowed e.g. '
                "127.0.0.1/32, 10.0.0.0/8, ::1/128."
            )
    return out


def site_specs(sites: Any, defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """The `sites` entry point's list with each spec's optional fields filled from `defaults`
    (what meta/argument_specs.yml documents); an entry that is not a dict is kept as given for
    sites_problems to name."""
    return [{**defaults, **site} if isinstance(site, dict) else site for site in sites or []]


def sites_problems(sites: Any) -> list[str]:
    """Every broken rule of the `sites` list at once: each spec's (site_problems, naming
    `reverse_proxy_sites[<index>].<field>`) and a name given twice (one file per name)."""
    if not isinstance(sites, list):
        return [f"reverse_proxy_sites is {type(sites).__name__}: allowed a list of site specs."]
    out: list[str] = []
    seen: set[str] = set()
    for index, site in enumerate(sites):
        v = f"reverse_proxy_sites[{index}]"
        if not isinstance(site, dict):
            out.append(f"{v} is {type(site).__name__}: allowed a site spec (name, port, upstream).")
            continue
        out += site_problems(site, v)
        name = str(site.get("name", ""))
        if name in seen:
            out.append(
                f'{v}.name "{name}" is given twice: each site is one file sites.d/<name>.caddy.'
            )
        seen.add(name)
    return out


def address(host: str, port: Any) -> str:
    """Caddy site address host:port; an IPv6 literal gets its brackets."""
    host = str(host).strip()
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            host = f"[{host.strip('[]')}]"
    except ValueError:
        pass
    return f"{host}:{_port(port)}"


def ports(current: list[Any] | None, site: dict[str, Any], http_port: Any) -> list[int]:
    """The ports the proxy listens on after adding `site`: its port, plus Caddy's HTTP port
    (every TLS site gets the automatic redirect listener there, measured with caddy 2.6.2)."""
    found = {_port(p) for p in current or []}
    if str(site.get("state", "present")) != "absent":
        found |= {_port(site.get("port")), _port(http_port)}
    return sorted(p for p in found if p > 0)


# What `stat -c %F` calls a regular file (an empty one has its own name).
REGULAR_FILE = ("regular file", "regular empty file")


def prune(now: dict[str, Any], sites_dir: str, prefix: str, keep: list[str] | None) -> list[str]:
    """The site files the `prune` entry point removes: every regular file `<prefix>*.caddy`
    directly in `sites_dir` that the probe found (hidden names never match, as with
    ansible.builtin.find), except `<sites_dir>/<name>.caddy` for each name in `keep`."""
    kept = {f"{sites_dir}/{name}.caddy" for name in keep or []}
    pattern = f"{prefix}*.caddy"
    out = []
    for path, found in (now.get("paths") or {}).items():
        parent, _, base = path.rpartition("/")
        if (
            parent == sites_dir
            and found.get("type") in REGULAR_FILE
            and not base.startswith(".")
            and fnmatch.fnmatchcase(base, pattern)
            and path not in kept
        ):
            out.append(path)
    return sorted(out)


def sites_ports(
    current: list[Any] | None, sites: list[dict[str, Any]], http_port: Any
) -> list[int]:
    """ports() for every site of a `sites` call."""
    out = sorted({_port(p) for p in current or []} - {0})
    for site in sites or []:
        out = ports(out, site, http_port)
    return out


def sites_removals(
    now: dict[str, Any], sites: list[dict[str, Any]], sites_dir: str, prefix: str
) -> list[str]:
    """The site files a `sites` call removes: each spec with state absent whose file the probe
    found, and, with a prefix, every other `<prefix>*.caddy` (as prune() with the present
    specs' names kept). Empty prefix: no pruning."""
    paths = now.get("paths") or {}
    out = {
        f"{sites_dir}/{site.get('name')}.caddy"
        for site in sites or []
        if str(site.get("state", "present")) == "absent"
        and f"{sites_dir}/{site.get('name')}.caddy" in paths
    }
    if prefix:
        keep = [
            str(site.get("name"))
            for site in sites or []
            if str(site.get("state", "present")) != "absent"
        ]
        out |= set(prune(now, sites_dir, prefix, keep))
    return sorted(out)


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "reverse_proxy_site_problems": site_problems,
            "reverse_proxy_address": address,
            "reverse_proxy_ports": ports,
            "reverse_proxy_prune": prune,
            "reverse_proxy_site_specs": site_specs,
            "reverse_proxy_sites_problems": sites_problems,
            "reverse_proxy_sites_ports": sites_ports,
            "reverse_proxy_sites_removals": sites_removals,
        }
