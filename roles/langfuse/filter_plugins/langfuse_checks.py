"""Langfuse's rules across variables, as one list of messages (empty = the settings are good).

Types and choices are checked by meta/argument_specs.yml; these are the rules it cannot express.
Plain Python so that every rule is unit-tested in milliseconds (tests/unit/test_langfuse_checks.py)
and the role checks everything in one task (tasks/validate.yml). Each message names the variable
and what is allowed; a message never contains the value of a secret.
"""

from __future__ import annotations

import re
from typing import Any

# RFC 3986 unreserved characters: secrets placed unencoded in a connection URL or env file.
URL_SAFE = r"^[A-Za-z0-9._~-]+$"
# An image reference pinned to one version: x.y[.z...] tag, MinIO's RELEASE.<date> tag, or a digest.
PINNED_IMAGE = (
    r"(:[0-9]+\.[0-9]+[0-9A-Za-z._-]*"
    r"|:RELEASE\.[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9-]+Z"
    r"|@sha256:[0-9a-f]{64})$"
)
# A bare host name, IPv4 or IPv6 address (no scheme, port, path or wildcard).
BARE_HOST = r"^([A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+|\[[0-9A-Fa-f:.]+\])$"

# Secrets that go into connection URLs (or an unquoted env file) as they are.
URL_SECRETS = (
    "langfuse_postgres_password",
    "langfuse_redis_password",
    "langfuse_s3_access_key",
    "langfuse_s3_secret_key",
    "langfuse_clickhouse_user",
    "langfuse_salt",
    "langfuse_nextauth_secret",
)
INIT_NAMES = (
    "langfuse_init_org_id",
    "langfuse_init_org_name",
    "langfuse_init_project_id",
    "langfuse_init_project_name",
    "langfuse_admin_name",
)
IMAGES = (
    "langfuse_web_image",
    "langfuse_worker_image",
    "langfuse_postgres_image",
    "langfuse_clickhouse_image",
    "langfuse_redis_image",
    "langfuse_minio_image",
    "langfuse_minio_mc_image",
)
# Everything the rules read: the role's own variables (defaults or inventory) and the derived
# values of vars/main.yml. vars/main.yml lists the same names (__langfuse_check_inputs; a unit test
# keeps both lists equal) and tasks/validate.yml hands their values to the filter.
INPUTS = (
    "langfuse_encryption_key",
    "langfuse_public_key",
    "langfuse_secret_key",
    *URL_SECRETS,
    "langfuse_clickhouse_password",
    "langfuse_admin_email",
    "langfuse_admin_password",
    *INIT_NAMES,
    "langfuse_public_url",
    "langfuse_version",
    *IMAGES,
    "langfuse_clickhouse_external_url",
    "langfuse_clickhouse_external_migration_url",
    "langfuse_postgres_external_url",
    "langfuse_redis_external_url",
    "langfuse_s3_external_endpoint",
    "langfuse_s3_region",
    "langfuse_s3_event_bucket",
    "langfuse_s3_media_bucket",
    "langfuse_s3_public_url",
    "langfuse_s3_public_port",
    "langfuse_s3_backend_port",
    "langfuse_media_upload_enabled",
    "langfuse_web_bind_address",
    "langfuse_web_port",
    "langfuse_worker_port",
    "langfuse_llm_connection_hosts",
    "__langfuse_tls",
    "__langfuse_proxy_port",
)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _found(pattern: str, value: Any) -> bool:
    """Ansible's `regex` test: re.search on the value as text."""
    return re.search(pattern, _text(value)) is not None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _key_problems(s: dict[str, Any]) -> list[str]:
    out = []
    if s["langfuse_encryption_key"] and not _found(
        r"^[0-9a-fA-F]{64}$", s["langfuse_encryption_key"]
    ):
        out.append(
            "langfuse_encryption_key must be exactly 64 hex characters (openssl rand -hex 32), "
            "or empty to generate one."
        )
    for var, prefix in (("langfuse_public_key", "pk"), ("langfuse_secret_key", "sk")):
        if s[var] and not _found(rf"^{prefix}-lf-[A-Za-z0-9._~-]+$", s[var]):
            out.append(
                f"{var} must look like {prefix}-lf-<letters, digits, . _ ~ ->, with no ':' "
                "(or be empty to generate one)."
            )
    for var in URL_SECRETS:
        if s[var] and not _found(URL_SAFE, s[var]):
            out.append(
                f"{var} may only contain A-Z a-z 0-9 . _ ~ - (it is placed unencoded in a "
                "connection URL or an unquoted env file; ':', '@', '/', '%' and the like "
                "break it). Leave it empty to generate one."
            )
    if s["langfuse_clickhouse_password"] and not _found(
        r"^[0-9a-fA-F]+$", s["langfuse_clickhouse_password"]
    ):
        out.append(
            "langfuse_clickhouse_password may only contain hex characters 0-9 a-f (Langfuse's "
            "ClickHouse migration puts it unencoded into a URL). Leave it empty to generate one."
        )
    return out


def _admin_problems(s: dict[str, Any]) -> list[str]:
    out = []
    email = _text(s["langfuse_admin_email"])
    if not _found(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$", email):
        out.append(
            "langfuse_admin_email must be a valid email address like admin@example.com (got "
            f"{email})."
        )
    password = _text(s["langfuse_admin_password"])
    if password and (len(password) < 8 or _found(r"[\s$'\"\\`#]", password)):
        out.append(
            "langfuse_admin_password must have at least 8 characters and no whitespace, quotes, "
            "backslash, backtick, '$' or '#' (it goes unquoted into an env file). Leave it empty "
            "to generate one."
        )
    out += [
        f"{var} must be non-empty and use only letters, digits, space, '.', '_' and '-'."
        for var in INIT_NAMES
        if not _found(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$", s[var])
    ]
    return out


def _version_problems(s: dict[str, Any]) -> list[str]:
    out = []
    url = _text(s["langfuse_public_url"])
    if not _found(r"^https?://[A-Za-z0-9._-]+(:[0-9]{1,5})?(/[^\s]*)?$", url):
        out.append(
            "langfuse_public_url must be an http:// or https:// URL with a host, "
            f"e.g. http://203.0.113.10:3000 (got {url})."
        )
    if not _found(r"^4\.[0-9]+\.[0-9]+$", s["langfuse_version"]):
        out.append(
            "langfuse_version must be an exact Langfuse v4 version x.y.z such as 4.59.0 "
            f"(got {_text(s['langfuse_version'])})."
        )
    out += [
        f"{var} must name an exact version (repo/image:1.2.3, a MinIO RELEASE.<date> tag or "
        f"@sha256:<digest>), not latest or a bare major (got {_text(s[var])})."
        for var in IMAGES
        if not _found(PINNED_IMAGE, s[var])
    ]
    return out


def _external_problems(s: dict[str, Any]) -> list[str]:
    out = []
    ch_url, ch_migration = (
        s["langfuse_clickhouse_external_url"],
        s["langfuse_clickhouse_external_migration_url"],
    )
    if (ch_url or ch_migration) and not (
        _found(r"^clickhouses?://", ch_migration)
        and _found(r"^https?://", ch_url)
        and s["langfuse_clickhouse_password"]
    ):
        out.append(
            "langfuse_clickhouse_external_url (http(s)://host:8123) needs "
            "langfuse_clickhouse_external_migration_url (clickhouse://host:9000) and "
            "langfuse_clickhouse_password."
        )
    if s["langfuse_postgres_external_url"] and not _found(
        r"^postgres(ql)?://", s["langfuse_postgres_external_url"]
    ):
        out.append(
            "langfuse_postgres_external_url must be a postgresql:// URL (percent-encode special "
            "characters)."
        )
    if s["langfuse_redis_external_url"] and not _found(
        r"^rediss?://", s["langfuse_redis_external_url"]
    ):
        out.append("langfuse_redis_external_url must be a redis:// or rediss:// connection string.")
    region = _text(s["langfuse_s3_region"])
    if s["langfuse_s3_external_endpoint"]:
        if not (
            _found(r"^https?://", s["langfuse_s3_external_endpoint"])
            and s["langfuse_s3_access_key"]
            and s["langfuse_s3_secret_key"]
        ):
            out.append(
                "langfuse_s3_external_endpoint must be an http(s):// URL and needs "
                "langfuse_s3_access_key "
                f"and langfuse_s3_secret_key (the buckets {_text(s['langfuse_s3_event_bucket'])} "
                "and "
                f"{_text(s['langfuse_s3_media_bucket'])} must exist)."
            )
        if not _found(r"^[a-z0-9-]+$", region):
            out.append(
                "langfuse_s3_region is required with langfuse_s3_external_endpoint: the region "
                "that "
                "service signs requests for (AWS S3: the buckets' region such as eu-central-1; "
                f'Cloudflare R2: auto). Got "{region}".'
            )
    if region and not _found(r"^[a-z0-9-]+$", region):
        out.append(
            "langfuse_s3_region must be a region name such as auto, us-east-1 or eu-central-1 "
            f'(got "{region}").'
        )
    return out


def _endpoint_problems(s: dict[str, Any]) -> list[str]:
    out = []
    tls = _truthy(s["__langfuse_tls"])
    media = _truthy(s["langfuse_media_upload_enabled"])
    bundled_s3 = not s["langfuse_s3_external_endpoint"]
    public_url, s3_url = _text(s["langfuse_public_url"]), _text(s["langfuse_s3_public_url"])
    if (
        media
        and bundled_s3
        and not (
            _found(r"^https?://[A-Za-z0-9._-]+(:[0-9]{1,5})?/?$", s3_url)
            and (not _found(r"^https://", public_url) or _found(r"^https://", s3_url))
        )
    ):
        out.append(
            f'langfuse_s3_public_url is "{s3_url}". It must be scheme://host[:port] with no path, '
            "and "
            "https:// when langfuse_public_url is https (browsers refuse plain-http media on an "
            "https "
            "page). The bundled MinIO serves plain HTTP on "
            f"langfuse_s3_public_port={_text(s['langfuse_s3_public_port'])}: put a TLS proxy in "
            "front "
            "of it and set langfuse_s3_public_url to that https:// URL, or turn media uploads off."
        )
    bind = _text(s["langfuse_web_bind_address"])
    if tls and not (bind in ("", "127.0.0.1") and _found(r"^https://", public_url)):
        out.append(
            "glassbox_tls is true: Langfuse web publishes on 127.0.0.1 only and the TLS proxy "
            "serves "
            "langfuse_public_url, which must be https:// (got langfuse_web_bind_address "
            f'"{bind}", langfuse_public_url "{public_url}"). Leave langfuse_web_bind_address empty '
            "and langfuse_public_url at its default (https://<glassbox_public_host>), or set "
            "glassbox_tls: false."
        )
    ports = [_int(s["langfuse_web_port"]), _int(s["langfuse_worker_port"])]
    ports += [_int(s["langfuse_s3_public_port"])] if media else []
    ports += [_int(s["__langfuse_proxy_port"])] if tls else []
    ports += [_int(s["langfuse_s3_backend_port"])] if tls and media and bundled_s3 else []
    if len(set(ports)) != len(ports):
        behind_proxy = (
            " (and langfuse_s3_backend_port, MinIO behind the TLS proxy, and the proxy port "
            f"{_text(s['__langfuse_proxy_port'])} of langfuse_public_url)"
            if tls
            else ""
        )
        out.append(
            "langfuse_web_port, langfuse_worker_port and langfuse_s3_public_port must differ"
            f"{behind_proxy}."
        )
    bad_hosts = [
        _text(h) for h in s["langfuse_llm_connection_hosts"] or [] if not _found(BARE_HOST, h)
    ]
    if bad_hosts:
        out.append(
            "langfuse_llm_connection_hosts must list host names or IP addresses only, without "
            f"scheme, port, path or wildcard (got {', '.join(bad_hosts)})."
        )
    return out


def problems(settings: dict[str, Any]) -> list[str]:
    """Every rule the settings break, one message each, in the order of the role's README."""
    missing = [name for name in INPUTS if name not in settings]
    if missing:
        raise ValueError(f"langfuse_problems: missing inputs {', '.join(missing)}")
    return (
        _key_problems(settings)
        + _admin_problems(settings)
        + _version_problems(settings)
        + _external_problems(settings)
        + _endpoint_problems(settings)
    )


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {"langfuse_problems": problems}
