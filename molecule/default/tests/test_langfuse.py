"""The langfuse role on the Molecule target, state configured: files, compose config, secrets."""

from __future__ import annotations

import json
import re

import pytest

PROJECT = "/opt/glassbox/langfuse"
SECRETS = "/etc/glassbox/langfuse/secrets.json"
ENV_FILES = ["langfuse", "web", "postgres", "clickhouse", "redis", "minio"]
VOLUMES = ["postgres_data", "clickhouse_data", "clickhouse_logs", "redis_data", "minio_data"]
COMPOSE = ["docker", "compose", "--project-directory", PROJECT, "-f", f"{PROJECT}/compose.yaml"]


def run_quiet(host, *argv):
    """Run a command whose output may hold secrets: never let it reach pytest's report."""
    cmd = host.run(" ".join(f"'{a}'" for a in argv))
    return cmd.rc, cmd.stdout


@pytest.fixture(scope="module")
def secrets(host):
    with host.sudo():
        return json.loads(host.file(SECRETS).content_string)


@pytest.fixture(scope="module")
def config(host):
    with host.sudo():
        rc, out = run_quiet(host, *COMPOSE, "config", "--format", "json")
    assert rc == 0, "docker compose config failed on the target"
    return json.loads(out)


def env_file(host, name):
    with host.sudo():
        text = host.file(f"{PROJECT}/env/{name}.env").content_string
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


@pytest.mark.parametrize(
    ("path", "mode"),
    [(f"{PROJECT}/compose.yaml", 0o640), (f"{PROJECT}/env", 0o700), (SECRETS, 0o600)]
    + [(f"{PROJECT}/env/{name}.env", 0o600) for name in ENV_FILES],
)
def test_files_are_root_owned_with_tight_modes(host, path, mode):
    with host.sudo():
        f = host.file(path)
        assert f.exists
        assert f.user == "root"
        assert f.group == "root"
        assert f.mode == mode


def test_docker_compose_config_accepts_the_project(host):
    with host.sudo():
        rc, _ = run_quiet(host, *COMPOSE, "config", "-q")
    assert rc == 0


def test_secrets_are_random_distinct_hex(secrets):
    expected = {
        "salt": 64,
        "encryption_key": 64,
        "nextauth_secret": 64,
        "postgres_password": 32,
        "clickhouse_password": 32,
        "redis_password": 32,
        "s3_access_key": 20,
        "s3_secret_key": 40,
        "public_key": 32,
        "secret_key": 32,
        "admin_password": 24,
    }
    assert set(secrets) == set(expected)
    for name, length in expected.items():
        prefix = {"public_key": "pk-lf-", "secret_key": "sk-lf-"}.get(name, "")
        assert re.fullmatch(f"{prefix}[0-9a-f]{{{length}}}", secrets[name]), name
        # random-looking: not one repeated character, several distinct digits
        assert len(set(secrets[name].removeprefix(prefix))) >= 6, name
    assert len(set(secrets.values())) == len(secrets)


def test_env_files_carry_the_host_secrets(host, secrets):
    web = env_file(host, "web")
    common = env_file(host, "langfuse")
    assert web["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"] == secrets["public_key"]
    assert web["LANGFUSE_INIT_PROJECT_SECRET_KEY"] == secrets["secret_key"]
    assert web["LANGFUSE_INIT_USER_PASSWORD"] == secrets["admin_password"]
    assert web["LANGFUSE_INIT_USER_EMAIL"] == "ops@glassbox.test"
    assert common["ENCRYPTION_KEY"] == secrets["encryption_key"]
    assert common["SALT"] == secrets["salt"]
    assert common["CLICKHOUSE_CLUSTER_ENABLED"] == "false"
    assert env_file(host, "redis")["REDIS_PASSWORD"] == secrets["redis_password"]


def test_compose_file_holds_no_secret(host, secrets):
    with host.sudo():
        text = host.file(f"{PROJECT}/compose.yaml").content_string
    assert not [k for k, v in secrets.items() if v in text]


def test_named_volumes_are_declared_and_created(host, config):
    assert {v["name"] for v in config["volumes"].values()} == {f"langfuse_{v}" for v in VOLUMES}
    with host.sudo():
        for volume in VOLUMES:
            cmd = host.run(f"docker volume inspect --format '{{{{.Labels}}}}' langfuse_{volume}")
            assert cmd.rc == 0, volume
            assert "com.docker.compose.project:langfuse" in cmd.stdout


def test_everything_is_published_on_loopback_behind_the_proxy(config):
    """glassbox_tls (the default): Caddy is the only listener off loopback (tests/test_edge.py)."""
    published = {
        name: [
            (p.get("host_ip", ""), str(p["published"]), p["target"]) for p in svc.get("ports", [])
        ]
        for name, svc in config["services"].items()
    }
    assert published.pop("langfuse-web") == [("127.0.0.1", "3000", 3000)]
    assert published.pop("langfuse-worker") == [("127.0.0.1", "3030", 3030)]
    # media uploads are on in this scenario: browsers and SDKs reach MinIO's S3 API through the
    # proxy's site on 9090, MinIO itself on langfuse_s3_backend_port (9000) on loopback
    assert published.pop("minio") == [("127.0.0.1", "9000", 9000)]
    assert all(not ports for ports in published.values()), published


def test_no_container_runs_in_state_configured(host):
    with host.sudo():
        cmd = host.run("docker ps --all --quiet --filter label=com.docker.compose.project=langfuse")
    assert cmd.rc == 0
    assert cmd.stdout.strip() == ""


def test_web_and_worker_listen_on_all_interfaces(config):
    # Docker sets HOSTNAME to the container id and both servers bind to it; the health checks
    # probe 127.0.0.1, so Compose must hand them HOSTNAME=0.0.0.0 (after env_file merging).
    for service in ("langfuse-web", "langfuse-worker"):
        env = config["services"][service]["environment"]
        assert env["HOSTNAME"] == "0.0.0.0", service  # noqa: S104 -- the bind we want
        probe = " ".join(config["services"][service]["healthcheck"]["test"])
        assert "http://127.0.0.1:" in probe, service


def test_only_web_gets_the_public_media_endpoint(host, config):
    web = config["services"]["langfuse-web"]["environment"]
    worker = config["services"]["langfuse-worker"]["environment"]
    assert worker["LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT"] == "http://minio:9000"
    public = web["LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT"]
    assert public.startswith("https://"), public
    assert public.endswith(":9090"), public
    assert "minio" not in public
    assert web["NEXTAUTH_URL"].split("://", 1)[1].split(":")[0] in public


@pytest.mark.parametrize("service", ["langfuse-web", "langfuse-worker"])
def test_llm_connections_may_reach_the_inference_host_and_nothing_wider(config, service):
    """roles/langfuse whitelists exactly the inference hosts (here: this one host) for Langfuse's
    LLM connections, by name or address; never a CIDR segment."""
    env = config["services"][service]["environment"]
    listed = [
        value
        for key in ("HOST", "IPS")
        for value in (env.get(f"LANGFUSE_LLM_CONNECTION_WHITELISTED_{key}") or "").split(",")
        if value
    ]
    assert len(listed) == 1, listed
    assert "LANGFUSE_LLM_CONNECTION_WHITELISTED_IP_SEGMENTS" not in env
