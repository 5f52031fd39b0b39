"""Bad inventory values must stop the langfuse role early, with the variable's name in the message.

Every case is a host of one ansible-playbook run. Cases run in state absent (validation comes first
in every state), so a check that wrongly lets a value through cannot reach Docker on this machine.
"""

from __future__ import annotations

import pytest

from tests.langfuse_harness import host_failures, run_playbook

# host -> (inventory values, the variable the message must name)
CASES: dict[str, tuple[dict, str]] = {
    "enc_short": ({"langfuse_encryption_key": "abc123"}, "langfuse_encryption_key"),
    "enc_not_hex": ({"langfuse_encryption_key": "g" * 64}, "langfuse_encryption_key"),
    "pk_prefix": ({"langfuse_public_key": "lf-pub-0123456789"}, "langfuse_public_key"),
    "pk_colon": ({"langfuse_public_key": "pk-lf-abc:def"}, "langfuse_public_key"),
    "sk_prefix": ({"langfuse_secret_key": "pk-lf-0123456789"}, "langfuse_secret_key"),
    "pg_colon": ({"langfuse_postgres_password": "Sup3r:Secret"}, "langfuse_postgres_password"),
    "redis_at": ({"langfuse_redis_password": "Sup3r@Secret"}, "langfuse_redis_password"),
    "s3_slash": ({"langfuse_s3_secret_key": "Sup3r/Secret"}, "langfuse_s3_secret_key"),
    "ch_not_hex": ({"langfuse_clickhouse_password": "Sup3rSecret"}, "langfuse_clickhouse_password"),
    "bad_state": ({"langfuse_state": "running"}, "langfuse_state"),
    "bad_email": ({"langfuse_admin_email": "admin-at-example"}, "langfuse_admin_email"),
    "short_pw": ({"langfuse_admin_password": "Sh0rt"}, "langfuse_admin_password"),
    "quoted_pw": ({"langfuse_admin_password": "'Sup3rSecret'"}, "langfuse_admin_password"),
    "latest": ({"langfuse_web_image": "langfuse/langfuse:latest"}, "langfuse_web_image"),
    "bare_major": ({"langfuse_version": "4"}, "langfuse_version"),
    "url_no_scheme": ({"langfuse_public_url": "langfuse.example.com"}, "langfuse_public_url"),
    "ch_half_external": (
        {"langfuse_clickhouse_external_url": "http://ch.example.com:8123"},
        "langfuse_clickhouse_external_migration_url",
    ),
    "port_type": ({"langfuse_web_port": "web"}, "langfuse_web_port"),
    # MinIO serves plain HTTP: an https Langfuse needs an https (TLS proxy) media endpoint.
    "media_http_behind_https": (
        {"langfuse_media_upload_enabled": True, "langfuse_public_url": "https://lf.example.com"},
        "langfuse_s3_public_url",
    ),
    "media_url_path": (
        {"langfuse_media_upload_enabled": True, "langfuse_s3_public_url": "http://h:9090/s3"},
        "langfuse_s3_public_url",
    ),
    # "auto" suits MinIO and R2, not AWS S3: an external store names its region.
    "s3_external_no_region": (
        {
            "langfuse_s3_external_endpoint": "https://s3.eu-central-1.amazonaws.com",
            "langfuse_s3_access_key": "AKIAEXAMPLE",
            "langfuse_s3_secret_key": "external-secret-key",
        },
        "langfuse_s3_region",
    ),
    # Only bare host names and addresses go into Langfuse's LLM-connection whitelist.
    "llm_host_url": (
        {"langfuse_llm_connection_hosts": ["http://gpu1.example.com:8000"]},
        "langfuse_llm_connection_hosts",
    ),
    "llm_host_wildcard": (
        {"langfuse_llm_connection_hosts": ["*.example.com"]},
        "langfuse_llm_connection_hosts",
    ),
}
# Valid given values: the same run must accept them (proves the checks are not simply always red).
GOOD = {
    "langfuse_encryption_key": "0123456789abcdef" * 4,
    "langfuse_public_key": "pk-lf-0123abcd",
    "langfuse_secret_key": "sk-lf-0123abcd",
    "langfuse_postgres_password": "Sup3r.Secret_~-",
    "langfuse_clickhouse_password": "0123abcdef",
    "langfuse_admin_password": "Sup3r-Secret!",
    "langfuse_admin_email": "ops@example.org",
    "langfuse_media_upload_enabled": True,
    "langfuse_public_url": "https://lf.example.org",
    "langfuse_s3_public_url": "https://s3.lf.example.org",
    "langfuse_llm_connection_hosts": ["gpu1.example.org", "10.0.0.7", "fd00::7", "[fd00::8]"],
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("langfuse-arguments")
    hosts = {name: {"langfuse_state": "absent", **values} for name, (values, _) in CASES.items()}
    hosts["good"] = {"langfuse_state": "absent", **GOOD}
    rc, report, output = run_playbook(
        tmp_path,
        hosts,
        [{"name": "Apply the role", "ansible.builtin.include_role": {"name": "langfuse"}}],
    )
    return rc, report, output


def test_the_run_fails(outcome):
    assert outcome[0] != 0


def test_valid_values_pass(outcome):
    _, report, _ = outcome
    assert host_failures(report, "good") == []
    assert report["stats"]["good"]["failures"] == 0


@pytest.mark.parametrize("case", CASES)
def test_bad_value_is_rejected_naming_the_variable(outcome, case):
    _, report, _ = outcome
    variable = CASES[case][1]
    messages = host_failures(report, case)
    assert messages, f"{case}: the role accepted {CASES[case][0]}"
    assert any(variable in m for m in messages), f"{case}: no message names {variable}: {messages}"


@pytest.mark.parametrize("case", ["pg_colon", "redis_at", "s3_slash", "ch_not_hex", "quoted_pw"])
def test_rejected_secret_is_not_printed(outcome, case):
    _, _, output = outcome
    (value,) = CASES[case][0].values()
    assert value not in output
