"""Render the langfuse role with real Ansible for several inventories; check the Langfuse v4 facts.

Docker Compose itself is not installed on this machine: the compose file is parsed as YAML here,
and `docker compose config` runs on the Molecule target (molecule/default/tests/test_langfuse.py).
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.langfuse_harness import RENDER_TASKS, host_failures, parse_env_file, run_playbook
from tests.proxy_harness import caddy_binary, make_ca

# A whole role entry point rendered by real Ansible for a matrix of hosts: the roles tier.
pytestmark = pytest.mark.roles

GIVEN_ENCRYPTION_KEY = "ab" * 32
GIVEN_PUBLIC_KEY = "pk-lf-given-public-0001"
GIVEN_SECRET_KEY = "sk-lf-given-secret-0001"  # noqa: S105 -- a test value, not a credential

SCENARIOS: dict[str, dict] = {
    # The single-host default: every store bundled, no media uploads.
    "single": {},
    # External PostgreSQL and Redis, media uploads on, a custom https public URL, so the
    # bundled MinIO's public endpoint is a TLS proxy's https URL.
    "external": {
        "langfuse_postgres_external_url": "postgresql://lf:pw@db.example.com:5432/langfuse",
        "langfuse_redis_external_url": "rediss://default:pw@cache.example.com:6380/0",
        "langfuse_media_upload_enabled": True,
        "langfuse_public_url": "https://langfuse.example.com",
        "langfuse_s3_public_url": "https://s3.langfuse.example.com",
    },
    # Bundled stores, media uploads on, custom public URL and port; keys from inventory.
    "media": {
        "langfuse_media_upload_enabled": True,
        "langfuse_web_port": 8080,
        "langfuse_public_url": "http://obs.example.org:8080",
        "langfuse_encryption_key": GIVEN_ENCRYPTION_KEY,
        "langfuse_public_key": GIVEN_PUBLIC_KEY,
        "langfuse_secret_key": GIVEN_SECRET_KEY,
        # Inference hosts Langfuse may call (LLM connections): a name and two addresses.
        "langfuse_llm_connection_hosts": ["GPU1.example.internal", "10.0.0.7", "fd00::7"],
    },
    # Every store external: only web and worker remain.
    "all_external": {
        "langfuse_postgres_external_url": "postgresql://lf:pw@db.example.com:5432/langfuse",
        "langfuse_redis_external_url": "redis://default:pw@cache.example.com:6379/0",
        "langfuse_clickhouse_external_url": "http://ch.example.com:8123",
        "langfuse_clickhouse_external_migration_url": "clickhouse://ch.example.com:9000",
        "langfuse_clickhouse_password": "0123abcd",
        "langfuse_s3_external_endpoint": "https://s3.example.com",
        "langfuse_s3_access_key": "AKIAEXAMPLE",
        "langfuse_s3_secret_key": "external-secret-key",
        "langfuse_s3_region": "eu-central-1",
        "langfuse_media_upload_enabled": True,
    },
}

COMMON_REQUIRED = {
    "DATABASE_URL",
    "SALT",
    "ENCRYPTION_KEY",
    "NEXTAUTH_URL",
    "TELEMETRY_ENABLED",
    "CLICKHOUSE_URL",
    "CLICKHOUSE_MIGRATION_URL",
    "CLICKHOUSE_USER",
    "CLICKHOUSE_PASSWORD",
    "CLICKHOUSE_CLUSTER_ENABLED",
    "LANGFUSE_S3_EVENT_UPLOAD_BUCKET",
    "LANGFUSE_S3_EVENT_UPLOAD_REGION",
    "LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID",
    "LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY",
    "LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT",
    "LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE",
    "LANGFUSE_S3_EVENT_UPLOAD_PREFIX",
}
MEDIA_REQUIRED = {
    "LANGFUSE_S3_MEDIA_UPLOAD_" + s
    for s in (
        "BUCKET",
        "REGION",
        "ACCESS_KEY_ID",
        "SECRET_ACCESS_KEY",
        "ENDPOINT",
        "FORCE_PATH_STYLE",
        "PREFIX",
    )
}
WEB_REQUIRED = {
    "NEXTAUTH_SECRET",
    "AUTH_DISABLE_SIGNUP",
    "LANGFUSE_INIT_ORG_ID",
    "LANGFUSE_INIT_ORG_NAME",
    "LANGFUSE_INIT_PROJECT_ID",
    "LANGFUSE_INIT_PROJECT_NAME",
    "LANGFUSE_INIT_PROJECT_PUBLIC_KEY",
    "LANGFUSE_INIT_PROJECT_SECRET_KEY",
    "LANGFUSE_INIT_USER_EMAIL",
    "LANGFUSE_INIT_USER_NAME",
    "LANGFUSE_INIT_USER_PASSWORD",
}
PLACEHOLDERS = ("mysalt", "miniosecret", "myredissecret", "0" * 64, "changeme", "mysecret")
PINNED = re.compile(
    r"(:[0-9]+\.[0-9]+[0-9A-Za-z._-]*|:RELEASE\.\d{4}-\d\d-\d\dT[0-9-]+Z|@sha256:[0-9a-f]{64})$"
)
STORES = {"postgres", "clickhouse", "redis", "minio", "minio-init"}


class Rendered:
    """One scenario's rendered project: compose.yaml parsed, env files read, per service."""

    def __init__(self, root: Path):
        self.root = root
        self.project = root / "project"
        self.compose_path = self.project / "compose.yaml"
        self.compose = yaml.safe_load(self.compose_path.read_text())
        self.services: dict = self.compose["services"]
        self.env_files = {p.stem: parse_env_file(p) for p in (self.project / "env").glob("*.env")}

    def env(self, service: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for path in self.services[service].get("env_file", []):
            merged.update(self.env_files[Path(path).stem])
        merged.update(self.services[service].get("environment") or {})
        return merged

    def ports(self, service: str) -> list[str]:
        return [str(p) for p in self.services[service].get("ports", [])]


# The fact the role publishes, kept beside the project for the test to read.
KEEP_CONNECTION = {
    "name": "Keep the published fact for the test",
    "ansible.builtin.copy": {
        "content": "{{ langfuse_connection | to_json }}",
        "dest": "{{ langfuse_project_dir }}/../connection.json",
        "mode": "0600",
    },
    "no_log": True,
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Rendered]:
    tmp_path = tmp_path_factory.mktemp("langfuse-contract")
    rc, report, output = run_playbook(
        tmp_path,
        SCENARIOS,
        [
            *RENDER_TASKS,
            KEEP_CONNECTION,
        ],
    )
    assert rc == 0, f"ansible-playbook failed: {report.get('stats')}"
    rendered = {name: Rendered(tmp_path / name) for name in SCENARIOS}
    for name, r in rendered.items():
        secrets = yaml.safe_load((r.root / "etc" / "secrets.json").read_text())
        for key, value in secrets.items():
            assert value not in output, f"{name}: the value of {key} appears in Ansible's output"
    return rendered


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_web_and_worker_have_every_required_variable(rendered, scenario):
    r = rendered[scenario]
    media = SCENARIOS[scenario].get("langfuse_media_upload_enabled", False)
    for service in ("langfuse-web", "langfuse-worker"):
        env = r.env(service)
        missing = COMMON_REQUIRED - env.keys()
        assert not missing, f"{service} lacks {sorted(missing)}"
        assert all(env[k] for k in COMMON_REQUIRED), f"{service} has empty required values"
        assert {"REDIS_HOST", "REDIS_PORT", "REDIS_AUTH"} <= env.keys() or env.get(
            "REDIS_CONNECTION_STRING"
        ), f"{service} has no Redis settings"
        assert (env.keys() >= MEDIA_REQUIRED) == media
        assert env["CLICKHOUSE_CLUSTER_ENABLED"] == "false"
        assert env["TELEMETRY_ENABLED"] == "false"
        assert re.fullmatch(r"[0-9a-f]{64}", env["ENCRYPTION_KEY"])
        assert re.fullmatch(r"[0-9a-f]+", env["CLICKHOUSE_PASSWORD"])
        assert env["LANGFUSE_S3_EVENT_UPLOAD_FORCE_PATH_STYLE"] == "true"
    web = r.env("langfuse-web")
    assert web.keys() >= WEB_REQUIRED
    assert web["AUTH_DISABLE_SIGNUP"] == "true"
    assert not (WEB_REQUIRED - {"AUTH_DISABLE_SIGNUP"}) & r.env("langfuse-worker").keys(), (
        "headless init and NEXTAUTH_SECRET belong to web only"
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_public_url_drives_nextauth(rendered, scenario):
    env = rendered[scenario].env("langfuse-web")
    public_url = SCENARIOS[scenario].get("langfuse_public_url", f"http://{scenario}:3000")
    assert env["NEXTAUTH_URL"] == public_url
    assert "localhost" not in env["NEXTAUTH_URL"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_web_and_worker_listen_on_every_interface(rendered, scenario):
    # Docker sets HOSTNAME to the container id; web (Next.js standalone) and worker
    # (app.listen(env.PORT, env.HOSTNAME)) bind to it, so the 127.0.0.1 health checks need 0.0.0.0.
    r = rendered[scenario]
    for service in ("langfuse-web", "langfuse-worker"):
        assert r.env(service).get("HOSTNAME") == "0.0.0.0", service  # noqa: S104 -- the bind we want
        assert "127.0.0.1:" in " ".join(r.services[service]["healthcheck"]["test"])


@pytest.mark.parametrize("scenario", ["external", "media"])
def test_only_web_signs_media_urls_with_the_public_endpoint(rendered, scenario):
    # Bundled MinIO: the worker deletes media inside the project network; web puts the public
    # endpoint into presigned URLs, with the scheme MinIO (or the operator's TLS proxy) serves.
    r = rendered[scenario]
    options = SCENARIOS[scenario]
    public_host = urlsplit(options["langfuse_public_url"]).hostname
    expected = options.get("langfuse_s3_public_url", f"http://{public_host}:9090")
    web, worker = r.env("langfuse-web"), r.env("langfuse-worker")
    assert web["LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT"] == expected
    assert worker["LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT"] == "http://minio:9000"
    regions = {web["LANGFUSE_S3_MEDIA_UPLOAD_REGION"], worker["LANGFUSE_S3_MEDIA_UPLOAD_REGION"]}
    assert regions == {"auto"}
    if urlsplit(options["langfuse_public_url"]).scheme == "https":
        assert urlsplit(web["LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT"]).scheme == "https"


def test_external_s3_is_one_endpoint_with_its_own_region(rendered):
    r = rendered["all_external"]
    for service in ("langfuse-web", "langfuse-worker"):
        env = r.env(service)
        assert env["LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT"] == "https://s3.example.com"
        assert env["LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT"] == "https://s3.example.com"
        assert env["LANGFUSE_S3_MEDIA_UPLOAD_REGION"] == "eu-central-1"
        assert env["LANGFUSE_S3_EVENT_UPLOAD_REGION"] == "eu-central-1"


def test_inventory_values_are_used_verbatim(rendered):
    web = rendered["media"].env("langfuse-web")
    assert web["ENCRYPTION_KEY"] == GIVEN_ENCRYPTION_KEY
    assert web["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"] == GIVEN_PUBLIC_KEY
    assert web["LANGFUSE_INIT_PROJECT_SECRET_KEY"] == GIVEN_SECRET_KEY
    ext = rendered["external"].env("langfuse-worker")
    assert ext["DATABASE_URL"] == SCENARIOS["external"]["langfuse_postgres_external_url"]
    assert ext["REDIS_CONNECTION_STRING"] == SCENARIOS["external"]["langfuse_redis_external_url"]
    assert "REDIS_AUTH" not in ext


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_headless_init_values_are_unquoted_and_well_formed(rendered, scenario):
    web = rendered[scenario].env("langfuse-web")
    for key, value in web.items():
        if key.startswith("LANGFUSE_INIT_"):
            assert value, f"{key} is empty"
            assert value[0] not in "'\"", f"{key} is quoted"
            assert value[-1] not in "'\"", f"{key} is quoted"
    assert web["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"].startswith("pk-lf-")
    assert web["LANGFUSE_INIT_PROJECT_SECRET_KEY"].startswith("sk-lf-")
    assert (
        ":" not in web["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"] + web["LANGFUSE_INIT_PROJECT_SECRET_KEY"]
    )
    assert len(web["LANGFUSE_INIT_USER_PASSWORD"]) >= 8
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", web["LANGFUSE_INIT_USER_EMAIL"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_upstream_placeholder_anywhere(rendered, scenario):
    root = rendered[scenario].project
    for path in [root / "compose.yaml", *sorted((root / "env").glob("*.env"))]:
        text = path.read_text().lower()
        for placeholder in PLACEHOLDERS:
            assert placeholder not in text, f"{placeholder!r} in {path.name}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_only_intended_ports_are_published(rendered, scenario):
    r = rendered[scenario]
    options = SCENARIOS[scenario]
    web_port = options.get("langfuse_web_port", 3000)
    assert r.ports("langfuse-web") == [f"0.0.0.0:{web_port}:3000"]
    assert r.ports("langfuse-worker") == ["127.0.0.1:3030:3030"]
    bundled_s3 = "langfuse_s3_external_endpoint" not in options
    expected_s3 = (
        ["9090:9000"] if bundled_s3 and options.get("langfuse_media_upload_enabled") else []
    )
    for service in r.services.keys() - {"langfuse-web", "langfuse-worker"}:
        assert r.ports(service) == (expected_s3 if service == "minio" else []), service


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_images_are_pinned_and_versions_match(rendered, scenario):
    services = rendered[scenario].services
    for name, service in services.items():
        image = service["image"]
        assert PINNED.search(image), f"{name}: {image} is not pinned to one version"
        assert not image.endswith(":latest")
    web_tag = services["langfuse-web"]["image"].rsplit(":", 1)[1]
    assert web_tag == services["langfuse-worker"]["image"].rsplit(":", 1)[1]
    major, minor, _patch = (int(x) for x in web_tag.split("."))
    assert (major, minor) >= (4, 59), "the Python SDK 5 needs Langfuse >= 4.59.0"


def test_clickhouse_is_a_line_langfuse_tests_or_recommends(rendered):
    # Upstream's compose file and CI run 25.12; its docs say ">= 25.12 (26.4 recommended)".
    image = rendered["single"].services["clickhouse"]["image"]
    major, minor = (int(x) for x in image.rsplit(":", 1)[1].split(".")[:2])
    assert (major, minor) in {(25, 12), (26, 4)}, image


def test_bundled_stores_are_wired_healthy_and_persistent(rendered):
    r = rendered["single"]
    assert r.services.keys() >= STORES
    for service in ("langfuse-web", "langfuse-worker"):
        deps = r.services[service]["depends_on"]
        for store in ("postgres", "clickhouse", "redis", "minio"):
            assert deps[store]["condition"] == "service_healthy"
        assert deps["minio-init"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in r.services[service]
    for store in ("postgres", "clickhouse", "redis", "minio"):
        assert "healthcheck" in r.services[store]
        mounts = [str(v).split(":")[0] for v in r.services[store]["volumes"]]
        assert all(m in r.compose["volumes"] for m in mounts), f"{store} uses a bind mount"
    assert set(r.compose["volumes"]) == {
        "postgres_data",
        "clickhouse_data",
        "clickhouse_logs",
        "redis_data",
        "minio_data",
    }
    redis_cmd = " ".join(r.services["redis"]["command"])
    assert "--requirepass" in redis_cmd
    assert "--maxmemory-policy noeviction" in redis_cmd


def test_store_credentials_match_what_langfuse_uses(rendered):
    r = rendered["single"]
    env = r.env("langfuse-worker")
    pg = r.env("postgres")
    assert env["DATABASE_URL"] == (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    )
    assert pg["TZ"] == pg["PGTZ"] == "UTC"
    assert env["REDIS_AUTH"] == r.env("redis")["REDIS_PASSWORD"]
    ch = r.env("clickhouse")
    assert (env["CLICKHOUSE_USER"], env["CLICKHOUSE_PASSWORD"]) == (
        ch["CLICKHOUSE_USER"],
        ch["CLICKHOUSE_PASSWORD"],
    )
    minio = r.env("minio")
    assert env["LANGFUSE_S3_EVENT_UPLOAD_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["LANGFUSE_S3_EVENT_UPLOAD_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert env["LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT"] == "http://minio:9000"


@pytest.mark.parametrize("scenario", ["single", "media"])
def test_buckets_are_created_before_langfuse_needs_them(rendered, scenario):
    r = rendered[scenario]
    init = r.services["minio-init"]
    script = " ".join(init["command"])
    env = r.env("langfuse-web")
    buckets = {env["LANGFUSE_S3_EVENT_UPLOAD_BUCKET"]}
    if "LANGFUSE_S3_MEDIA_UPLOAD_BUCKET" in env:
        buckets.add(env["LANGFUSE_S3_MEDIA_UPLOAD_BUCKET"])
    for bucket in buckets:
        assert f"mc mb --ignore-existing glassbox/{bucket}" in script
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert init["restart"] == "no"


def test_external_stores_are_not_rendered(rendered):
    ext = rendered["external"]
    assert not {"postgres", "redis"} & ext.services.keys()
    assert {"clickhouse", "minio", "minio-init"} <= ext.services.keys()
    assert not {"postgres", "redis"} & ext.env_files.keys()
    assert not {"postgres_data", "redis_data"} & set(ext.compose["volumes"])
    everything = rendered["all_external"]
    assert set(everything.services) == {"langfuse-web", "langfuse-worker"}
    assert "volumes" not in everything.compose
    assert "depends_on" not in everything.services["langfuse-web"]
    worker = everything.env("langfuse-worker")
    assert worker["CLICKHOUSE_URL"] == "http://ch.example.com:8123"
    assert worker["CLICKHOUSE_MIGRATION_URL"] == "clickhouse://ch.example.com:9000"
    assert worker["LANGFUSE_S3_EVENT_UPLOAD_ENDPOINT"] == "https://s3.example.com"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secrets_are_private_distinct_and_absent_from_compose(rendered, scenario):
    r = rendered[scenario]
    secrets_file = r.root / "etc" / "secrets.json"
    secrets = yaml.safe_load(secrets_file.read_text())
    generated = [v for k, v in secrets.items() if SCENARIOS[scenario].get(f"langfuse_{k}") is None]
    assert len(set(generated)) == len(generated), "two secrets share a value"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(r.compose_path.stat().st_mode) == 0o640
    for path in (r.project / "env").glob("*.env"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    compose_text = r.compose_path.read_text()
    for value in secrets.values():
        assert value not in compose_text, "a secret value sits in compose.yaml"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_connection_fact_carries_public_url_and_keys(rendered, scenario):
    r = rendered[scenario]
    connection = yaml.safe_load((r.root / "connection.json").read_text())
    web = r.env("langfuse-web")
    assert connection == {
        "base_url": web["NEXTAUTH_URL"],
        "public_key": web["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"],
        "secret_key": web["LANGFUSE_INIT_PROJECT_SECRET_KEY"],
    }


def test_llm_connection_whitelist_is_the_inference_hosts_only(rendered):
    """Langfuse 4.16.0 refuses LLM base URLs on private addresses unless whitelisted by exact host
    name (LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST) or exact address (_IPS); both web (which
    validates the URL on PUT) and worker (which calls it for evaluations) get the same lists, and
    no CIDR segment is ever opened (packages/shared/src/server/llm/baseUrlValidation.ts)."""
    for service in ("langfuse-web", "langfuse-worker"):
        env = rendered["media"].env(service)
        assert env["LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST"] == "gpu1.example.internal"
        assert env["LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS"] == "10.0.0.7,fd00::7"
        assert "LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS" not in env
    # No inference host in the inventory: nothing is whitelisted.
    single = rendered["single"].env("langfuse-web")
    assert not any(k.startswith("LANGFUSE_LLM_CONNECTION_WHITELISTED") for k in single)


# With glassbox_tls (the scenarios above keep it false: plain HTTP as before the proxy).
TLS_SCENARIOS: dict[str, dict] = {
    "tls-single": {"glassbox_public_host": "obs.example.org"},
    "tls-media": {
        "glassbox_public_host": "10.0.0.9",
        "langfuse_media_upload_enabled": True,
        "langfuse_s3_backend_port": 9100,
    },
}
TLS_BAD: dict[str, tuple[dict, list[str]]] = {
    "tls-bad-bind": (
        {"langfuse_web_bind_address": "0.0.0.0"},  # noqa: S104 - the refused value
        ["glassbox_tls", "langfuse_web_bind_address", '"0.0.0.0"'],
    ),
    "tls-bad-http-url": (
        {"langfuse_public_url": "http://obs.example.org:3000"},
        ["glassbox_tls", "langfuse_public_url", "https://"],
    ),
    "tls-bad-backend-port": (
        {"langfuse_media_upload_enabled": True, "langfuse_s3_backend_port": 3000},
        ["langfuse_s3_backend_port", "must differ"],
    ),
}


@pytest.fixture(scope="module")
def rendered_tls(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("langfuse-tls")
    make_ca(tmp_path / "tls", ["obs.example.org"])
    proxy = {
        "glassbox_tls": True,
        "glassbox_tls_dir": str(tmp_path / "tls"),
        "reverse_proxy_caddy_bin": caddy_binary(),
        "reverse_proxy_group": "root",
        "reverse_proxy_reload": False,
    }
    hosts = {
        name: {**proxy, "reverse_proxy_config_dir": str(tmp_path / name / "caddy"), **values}
        for name, values in {**TLS_SCENARIOS, **{k: v for k, (v, _) in TLS_BAD.items()}}.items()
    }
    _rc, report, output = run_playbook(
        tmp_path,
        hosts,
        [
            {
                "name": "The proxy's main Caddyfile first, as playbooks/edge.yml does",
                "ansible.builtin.include_role": {"name": "reverse_proxy", "tasks_from": "render"},
            },
            *RENDER_TASKS,
            KEEP_CONNECTION,
        ],
    )
    return {"tmp": tmp_path, "report": report, "output": output}


def _tls(rendered_tls, name):
    assert not host_failures(rendered_tls["report"], name), host_failures(
        rendered_tls["report"], name
    )
    return Rendered(rendered_tls["tmp"] / name)


def test_tls_web_on_loopback_behind_https(rendered_tls):
    r = _tls(rendered_tls, "tls-single")
    assert r.ports("langfuse-web") == ["127.0.0.1:3000:3000"]
    assert r.env("langfuse-web")["NEXTAUTH_URL"] == "https://obs.example.org"
    connection = json.loads((r.root / "connection.json").read_text())
    assert connection["base_url"] == "https://obs.example.org"
    sites = r.root / "caddy" / "sites.d"
    assert sorted(p.name for p in sites.iterdir()) == ["langfuse.caddy"]
    text = (sites / "langfuse.caddy").read_text()
    assert "obs.example.org:443 {" in text
    assert "reverse_proxy 127.0.0.1:3000" in text
    assert "respond 401" not in text  # Langfuse checks its own keys and sessions
    for service in ("langfuse-web", "langfuse-worker"):
        # LLM connections to vLLM behind the proxy: Node trusts the deployment's CA.
        assert r.env(service)["NODE_EXTRA_CA_CERTS"] == "/etc/glassbox/ca.crt"
        (mount,) = r.services[service]["volumes"]
        assert mount["source"] == str(rendered_tls["tmp"] / "tls" / "ca.crt")
        assert mount["target"] == "/etc/glassbox/ca.crt"
        assert mount["read_only"] is True
        assert mount["bind"] == {"create_host_path": False}


def test_tls_media_goes_through_the_proxy_to_minio_on_loopback(rendered_tls):
    r = _tls(rendered_tls, "tls-media")
    assert r.ports("minio") == ["127.0.0.1:9100:9000"]
    assert r.env("langfuse-web")["LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT"] == "https://10.0.0.9:9090"
    assert r.env("langfuse-web")["NEXTAUTH_URL"] == "https://10.0.0.9"
    text = (r.root / "caddy" / "sites.d" / "langfuse-media.caddy").read_text()
    assert "10.0.0.9:9090 {" in text
    assert "reverse_proxy 127.0.0.1:9100" in text


@pytest.mark.parametrize("name", sorted(TLS_BAD))
def test_tls_bad_input_fails_naming_the_variable(rendered_tls, name):
    message = " ".join(host_failures(rendered_tls["report"], name))
    for word in TLS_BAD[name][1]:
        assert word in message, f"{word!r} not in {message}"
    assert not (rendered_tls["tmp"] / name / "project" / "compose.yaml").exists()
