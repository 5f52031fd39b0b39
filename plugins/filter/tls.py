"""Certificate rules of issue 12 (roles/tls_certificate, roles/connect), as filters.

Filters run on the controller, where `cryptography` is installed (requirements.txt): certificates
(public) are parsed here; private keys are parsed here only for a `provided` key, which the
controller already holds (inventory or vault). Unit-tested in tests/unit/test_tls_filters.py.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import ipaddress
import json
import re
from typing import Any

# RFC 1123 host name label: letters, digits, hyphens inside; 1-63 characters.
LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
BEGIN = "-----BEGIN CERTIFICATE-----"


def host_kind(name: Any) -> str:
    """`ip` for an IPv4/IPv6 address, `dns` for an RFC 1123 host name (labels of letters,
    digits and inner hyphens, 1-63 characters each, 253 in all, one trailing dot allowed),
    `bad` for anything else."""
    text = str(name if name is not None else "").strip()
    if not text or text != str(name):
        return "bad"
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        return "ip"
    bare = text[:-1] if text.endswith(".") else text
    if not bare or len(bare) > 253:
        return "bad"
    labels = bare.split(".")
    if not all(LABEL.fullmatch(label) for label in labels):
        return "bad"
    # An all-numeric last label reads as a (mistyped) IPv4 address, not a name.
    if labels[-1].isdigit():
        return "bad"
    return "dns"


def bad_names(names: list[Any]) -> list[str]:
    """The names that are neither a DNS name nor an IP address (see host_kind)."""
    return [str(name) for name in names or [] if host_kind(name) == "bad"]


def san_entries(names: list[Any]) -> list[str]:
    """The certificate SAN entries (`DNS:x` / `IP:y`) for host names and addresses, in order,
    without duplicates; `bad` names are left out (validate refuses them first)."""
    out: list[str] = []
    for name in names or []:
        kind = host_kind(name)
        if kind == "bad":
            continue
        text = str(name).rstrip(".")
        entry = f"IP:{ipaddress.ip_address(text)}" if kind == "ip" else f"DNS:{text.lower()}"
        if entry not in out:
            out.append(entry)
    return out


def _x509():
    from cryptography import x509  # noqa: PLC0415 - only the cert filters need it

    return x509


def split_certs(pem: str) -> list[str]:
    """The PEM certificate blocks of a text, in order."""
    text = str(pem or "")
    blocks = []
    for part in text.split(BEGIN)[1:]:
        end = part.find("-----END CERTIFICATE-----")
        if end < 0:
            break
        blocks.append(BEGIN + part[: end + len("-----END CERTIFICATE-----")] + "\n")
    return blocks


def _load_cert(pem: str):
    return _x509().load_pem_x509_certificate(pem.encode("ascii"))


def _names_of(cert) -> list[str]:
    """The SAN entries of a certificate as `DNS:x` / `IP:y`."""
    x509 = _x509()
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names = [f"DNS:{value.lower()}" for value in ext.get_values_for_type(x509.DNSName)]
    names += [f"IP:{value}" for value in ext.get_values_for_type(x509.IPAddress)]
    return names


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _public_bytes(key) -> bytes:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _issued_by(cert, ca) -> bool:
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def reissue_reasons(
    cert_pem: str,
    ca_pem: str,
    want: list[str],
    renew_days: int,
    key_public_pem: str = "",
) -> list[str]:
    """Why an internal host certificate must be issued again (empty list: keep it).

    `cert_pem` is the host's host.crt ('' when missing), `ca_pem` the CA certificate, `want`
    the SAN entries it must carry (san_entries), `renew_days` how long before expiry it is
    renewed; `key_public_pem` the public half of host.key when known ('' skips that check).
    The certificate modules of community.crypto never re-issue for time by themselves
    (ignore_timestamps defaults to true), hence the explicit expiry rule.
    """
    if not str(cert_pem or "").strip():
        return ["no host certificate yet"]
    try:
        cert = _load_cert(split_certs(cert_pem)[0])
    except (ValueError, IndexError):
        return ["host.crt is not a PEM certificate"]
    reasons = []
    moment = _now()
    if cert.not_valid_after_utc <= moment + datetime.timedelta(days=int(renew_days)):
        reasons.append(
            f"expires {cert.not_valid_after_utc:%Y-%m-%d}, within {int(renew_days)} days"
        )
    if sorted(_names_of(cert)) != sorted(want):
        reasons.append(f"names {sorted(_names_of(cert))} differ from {sorted(want)}")
    if not str(ca_pem or "").strip() or not _issued_by(cert, _load_cert(ca_pem)):
        reasons.append("not issued by the CA")
    if str(key_public_pem or "").strip():
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

        key = serialization.load_pem_public_key(str(key_public_pem).encode("ascii"))
        if _public_bytes(key) != _public_bytes(cert.public_key()):
            reasons.append("does not match host.key")
    return reasons


def _covers(entries: list[str], host: str) -> bool:
    kind = host_kind(host)
    if kind == "ip":
        return f"IP:{ipaddress.ip_address(host)}" in entries
    name = host.rstrip(".").lower()
    if f"DNS:{name}" in entries:
        return True
    head, _, rest = name.partition(".")
    return bool(rest) and bool(head) and f"DNS:*.{rest}" in entries


def provided_problems(cert_pem: str, key_pem: str, host: str) -> list[str]:
    """What is wrong with a provided certificate chain and key for `host` (empty: usable).

    The leaf is the first certificate; it must match the key, be valid for at least one more
    day and name `host` in its SAN (exactly, through a one-label `*.` wildcard, or as
    an IP address). Each problem names the variable."""
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    cert_var, key_var = "tls_certificate_provided_cert", "tls_certificate_provided_key"
    blocks = split_certs(cert_pem)
    if not blocks:
        return [f"{cert_var} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"]
    try:
        leaf = _load_cert(blocks[0])
    except ValueError as exc:
        return [f"{cert_var}: the first certificate does not parse ({exc})"]
    problems = []
    try:
        key = serialization.load_pem_private_key(str(key_pem or "").encode("ascii"), None)
    except (ValueError, TypeError) as exc:
        reason = "is encrypted (give it without a passphrase)" if "encrypted" in str(exc) else ""
        problems.append(f"{key_var} is not an unencrypted PEM private key {reason}".strip())
    else:
        if _public_bytes(key.public_key()) != _public_bytes(leaf.public_key()):
            problems.append(f"{cert_var} (its first certificate) does not match {key_var}")
    moment = _now()
    ends = leaf.not_valid_after_utc
    if ends <= moment:
        problems.append(f"{cert_var} expired on {ends:%Y-%m-%d %H:%M} UTC")
    elif ends <= moment + datetime.timedelta(days=1):
        problems.append(f"{cert_var} expires on {ends:%Y-%m-%d %H:%M} UTC, in less than a day")
    if leaf.not_valid_before_utc > moment:
        problems.append(f"{cert_var} is not valid before {leaf.not_valid_before_utc:%Y-%m-%d}")
    entries = _names_of(leaf)
    if not _covers(entries, str(host)):
        problems.append(
            f"{cert_var} does not cover glassbox_public_host {host!r} "
            f"(its names: {', '.join(entries) or 'none'})"
        )
    return problems


def cert_sha256(pem: str) -> str:
    """SHA-256 fingerprint (hex) of the first certificate of a PEM text, '' when none."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415

    blocks = split_certs(pem)
    return _load_cert(blocks[0]).fingerprint(hashes.SHA256()).hex() if blocks else ""


def trust_bundle(ca_pems: list[str]) -> str:
    """The app env trust bundle: the given CA certificates, then certifi's roots (SSL_CERT_FILE
    and REQUESTS_CA_BUNDLE replace a client's default trust store, so public sites must stay
    trusted)."""
    import certifi  # noqa: PLC0415 - read where the controller's clients find their roots

    with open(certifi.where(), encoding="ascii") as handle:
        roots = handle.read()
    own = "".join(block for pem in ca_pems or [] for block in split_certs(pem))
    return own + roots


def scheme_changes(old_env: str, new_urls: dict[str, str]) -> list[str]:
    """`KEY: http -> https` for each URL of `new_urls` whose scheme differs from the same key in
    an existing env file text (values are not echoed: the file holds secrets)."""
    old = {}
    for raw in str(old_env or "").splitlines():
        key, sep, value = raw.strip().partition("=")
        if sep:
            old[key.strip()] = value.strip()
    changes = []
    for key, url in (new_urls or {}).items():
        before = old.get(key, "")
        if not before or "://" not in before or "://" not in str(url):
            continue
        was, now = before.split("://", 1)[0], str(url).split("://", 1)[0]
        if was != now:
            changes.append(f"{key}: {was} -> {now}")
    return changes


def file_differs(
    found: dict, mode: str, owner: str, group: str, content: str | None = None
) -> bool:
    """Whether a host file must go through its module: `found` is its entry in
    ansible.builtin.find's result (get_checksum) or {} when missing; `content` None skips the
    checksum (a key, whose content the controller never sees)."""
    if not found:
        return True
    if content is not None:
        digest = hashlib.sha1(content.encode("utf-8")).hexdigest()  # noqa: S324 - find's checksum is sha1
        if found.get("checksum") != digest:
            return True
    return (
        int(str(found.get("mode", "0")), 8) != int(mode, 8)
        or found.get("pw_name") != owner
        or found.get("gr_name") != group
    )


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on", "y", "t"}


def connect_ca_file(pair: list[str], hostvars: Any) -> str:
    """The CA file (a controller path) that verifies a service's certificate, for the app env:
    `pair` is (host, connection fact name). The connection fact's `ca_file` first, else the
    tls_certificate role's `tls_certificate_ca_file` on that host; '' with glassbox_tls off."""
    host, fact = pair
    if not host:
        return ""
    values = hostvars[host]
    if not _truthy(values.get("glassbox_tls", True)):
        return ""
    connection = values.get(fact) or {}
    return str(connection.get("ca_file") or values.get("tls_certificate_ca_file") or "")


# What validate checks, in its order; each message names the variable (tests match them).
NAME_RULE = (
    "is neither a DNS name (RFC 1123: letters, digits and inner hyphens, labels of 1-63"
    " characters separated by dots, 253 in all) nor an IP address."
)


def _int_or_zero(value: Any) -> int:
    """Jinja's `| int`: a value that is not a whole number counts as 0."""
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def setting_problems(settings: dict) -> list[str]:
    """Every refusal of the role's settings (empty: usable), checked on the controller before
    any host changes. `settings`: public_host, extra_names, source (internal | provided | acme),
    days, renew_days, provided_cert, provided_key, provided_ca, host (inventory name)."""
    public_host = settings.get("public_host")
    extra = list(settings.get("extra_names") or [])
    names = [public_host, *extra]
    source = settings.get("source", "internal")
    shown = f"glassbox_public_host ({json.dumps(public_host)})"
    shown_extra = f"tls_certificate_extra_names ({json.dumps(extra)})"
    problems = []
    bad = bad_names(names)
    if bad:
        problems.append(
            f"{', '.join(json.dumps(name) for name in bad)} in {shown} or {shown_extra} {NAME_RULE}"
        )
    days, renew_days = settings.get("days"), settings.get("renew_days")
    if _int_or_zero(days) < 1 or _int_or_zero(renew_days) < 0:
        problems.append(
            f"tls_certificate_days ({days}) must be at least 1 and"
            f" tls_certificate_renew_days ({renew_days}) at least 0."
        )
    if source == "acme" and (
        any(host_kind(name) != "dns" for name in names)
        or not all(re.search(r"[.].*[^.]", str(name)) for name in names)
    ):
        problems.append(
            f"glassbox_tls_source acme needs public DNS names, and {shown} / {shown_extra}"
            " hold an IP address or a name without a dot. Use a DNS name that resolves to this"
            " host, or glassbox_tls_source internal or provided."
        )
    if source == "provided":
        found = provided_problems(
            settings.get("provided_cert", ""), settings.get("provided_key", ""), str(public_host)
        )
        ca = settings.get("provided_ca") or ""
        if ca and not _parses(ca):
            found.append("tls_certificate_provided_ca holds no PEM certificate")
        if found:
            problems.append(
                f"glassbox_tls_source provided on {settings.get('host')}: {'; '.join(found)}."
            )
    return problems


def _parses(pem: str) -> bool:
    try:
        return cert_sha256(pem) != ""
    except ValueError:
        return False


# The read of the host (roles/tls_certificate/tasks/main.yml) prints the records
# glassbox_host_probe parses (pkg, path, sha1) and two of its own, one line each:
# `pem <file name>|<base64 of the file>` (host.crt, ca.crt) and `pub host.key|<base64 of the
# key's public half>` (openssl pkey -pubout; absent when openssl is not installed).
HOST_FILES = ("host.crt", "host.key", "ca.crt")


def _records(stdout: str, kind: str) -> dict[str, str]:
    out = {}
    for line in str(stdout or "").splitlines():
        head, _, rest = line.partition(" ")
        name, sep, data = rest.partition("|")
        if head != kind or not sep:
            continue
        try:
            out[name] = base64.b64decode(data.strip(), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            out[name] = ""
    return out


def host_state(probe: dict, stdout: str, host_dir: str) -> dict:
    """What the host holds in `host_dir`: `probe` is the read's output parsed by
    glassbox_host_probe, `stdout` the same output (for the pem and pub records). Returns `dir`
    (type, mode, owner, group; {} when missing), `files` (per file name, an entry shaped like
    ansible.builtin.find's with get_checksum, {} when not a regular file: what file_differs
    takes), `crt` and `ca` (the PEM texts, '' when missing), `key` (host.key exists),
    `key_public` (its public half, '' when not read) and `installed` (dpkg: each package
    installed without error, as `name` and `name=<version>`)."""
    probe = probe or {}
    paths, sums = probe.get("paths") or {}, probe.get("sha1") or {}
    base = str(host_dir).rstrip("/")
    files = {}
    for name in HOST_FILES:
        path = f"{base}/{name}"
        seen = paths.get(path) or {}
        files[name] = (
            {
                "checksum": sums.get(path, ""),
                "mode": seen.get("mode", ""),
                "pw_name": seen.get("owner", ""),
                "gr_name": seen.get("group", ""),
            }
            if seen.get("type") == "regular file"
            else {}
        )
    pems, public = _records(stdout, "pem"), _records(stdout, "pub")
    return {
        "dir": paths.get(base) or {},
        "files": files,
        "crt": pems.get("host.crt", "") if files["host.crt"] else "",
        "ca": pems.get("ca.crt", "") if files["ca.crt"] else "",
        "key": bool(files["host.key"]),
        "key_public": public.get("host.key", "") if files["host.key"] else "",
        "installed": list(probe.get("installed_specs") or []),
    }


def host_cas(hosts: list[str], hostvars: Any) -> list[str]:
    """The different ca.crt texts the internal hosts hold (in host order; hosts of another
    glassbox_tls_source, or that the read did not run on, are left out): where the controller's
    lost ca.crt comes back from."""
    out: list[str] = []
    for host in hosts or []:
        values = hostvars[host]
        if str(values.get("glassbox_tls_source") or "internal") != "internal":
            continue
        read = values.get("__tls_certificate_probe") or {}
        ca = _records(read.get("stdout", ""), "pem").get("ca.crt", "")
        if ca and ca not in out:
            out.append(ca)
    return out


def ca_plan(hosts: list[str], hostvars: Any, controller: dict) -> dict:
    """The decision about the internal CA, once for the play: `problems` (messages that stop
    the run before any change) and `make_ca` (a CA must be made). `hosts` are the play's hosts,
    each with `__tls_certificate_due` (its re-issue reasons, the role's set_fact) and
    `__tls_certificate_probe` (the read of the host); `controller`: ca_crt and ca_key (paths),
    ca_crt_file and ca_key_file (whether they exist), rotate (tls_certificate_ca_rotate),
    host_dir (named in the message)."""
    ca_crt, ca_key = controller["ca_crt"], controller["ca_key"]
    cas = host_cas(hosts, hostvars)
    if not controller.get("ca_crt_file") and len(cas) > 1:
        return {
            "problems": [
                f"{ca_crt} is missing and the hosts hold {len(cas)} different ca.crt files in"
                f" {controller.get('host_dir')} (hosts: {', '.join(hosts)}). Put the right CA"
                f" certificate back at {ca_crt} and run again."
            ],
            "make_ca": False,
        }
    have_ca = bool(controller.get("ca_crt_file")) or len(cas) == 1
    due = [(host, hostvars[host].get("__tls_certificate_due") or []) for host in hosts or []]
    due = [(host, reasons) for host, reasons in due if reasons]
    key_lost = not controller.get("ca_key_file")
    problems = []
    if key_lost and due and have_ca and not _truthy(controller.get("rotate", False)):
        listed = "; ".join(f"{host}: {', '.join(reasons)}" for host, reasons in due)
        problems.append(
            f"Host certificates must be issued ({listed}), but the CA key credentials/tls/ca.key"
            f" ({ca_key}) is missing on the controller. Nothing was changed. Restore ca.key from"
            " your backup, or set tls_certificate_ca_rotate=true to make a NEW CA (every host"
            " certificate is then re-issued and every client must trust the new"
            " credentials/tls/ca.crt)."
        )
    return {"problems": problems, "make_ca": not have_ca or (bool(due) and key_lost)}


DIR_WANTED = {"type": "directory", "mode": "755", "owner": "root", "group": "root"}


def host_todo(now: dict, wanted: dict) -> list[str]:
    """What an internal host needs, from what the read found (`now`, host_state's shape):
    `packages` (one of `wanted['packages']` is not installed), `dir` (not a root:root 0755
    directory), `key` (host.key missing or not root:`wanted['key_group']` 0640), `certificate`
    (`wanted['reasons']` to issue it are not empty), `certificate_mode` (a kept host.crt that is
    not root:root 0644), `ca` (`wanted['ca_pem']` given and the host's ca.crt differs). Empty:
    nothing to change on this host."""
    files = now.get("files") or {}
    todo = []
    installed = now.get("installed") or []
    if any(name not in installed for name in wanted.get("packages") or []):
        todo.append("packages")
    if (now.get("dir") or {}) != DIR_WANTED:
        todo.append("dir")
    if file_differs(files.get("host.key") or {}, "0640", "root", str(wanted.get("key_group"))):
        todo.append("key")
    if wanted.get("reasons"):
        todo.append("certificate")
    elif files.get("host.crt") and file_differs(files["host.crt"], "0644", "root", "root"):
        todo.append("certificate_mode")
    ca_pem = str(wanted.get("ca_pem") or "")
    if ca_pem and file_differs(files.get("ca.crt") or {}, "0644", "root", "root", ca_pem):
        todo.append("ca")
    return todo


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "glassbox_host_kind": host_kind,
            "glassbox_tls_bad_names": bad_names,
            "glassbox_tls_san_entries": san_entries,
            "glassbox_tls_reissue_reasons": reissue_reasons,
            "glassbox_tls_provided_problems": provided_problems,
            "glassbox_tls_cert_sha256": cert_sha256,
            "glassbox_tls_trust_bundle": trust_bundle,
            "glassbox_tls_scheme_changes": scheme_changes,
            "glassbox_connect_ca_file": connect_ca_file,
            "glassbox_tls_file_differs": file_differs,
            "glassbox_tls_setting_problems": setting_problems,
            "glassbox_tls_host_state": host_state,
            "glassbox_tls_host_cas": host_cas,
            "glassbox_tls_ca_plan": ca_plan,
            "glassbox_tls_host_todo": host_todo,
        }
