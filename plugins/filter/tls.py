"""Certificate rules of issue 12 (roles/tls_certificate, roles/connect), as filters.

Filters run on the controller, where `cryptography` is installed (requirements.txt): certificates
(public) are parsed here; private keys are parsed here only for a `provided` key, which the
controller already holds (inventory or vault). Unit-tested in tests/unit/test_tls_filters.py.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
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
        }
