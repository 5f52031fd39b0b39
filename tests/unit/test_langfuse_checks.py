"""Langfuse's rules across variables (roles/langfuse/filter_plugins/langfuse_checks.py).

Milliseconds. tests/test_langfuse_arguments.py proves the wiring (the role stops on a bad inventory
value, naming it); here every rule is tried on its own, beside values that must pass.
"""

from __future__ import annotations

import pytest
import yaml

from tests.unit import REPO, load_plugin

checks = load_plugin("roles/langfuse/filter_plugins/langfuse_checks.py")

# A valid set of inputs: the role's defaults as rendered for a TLS host named lf.example.org.
GOOD: dict = {
    "langfuse_encryption_key": "",
    "langfuse_public_key": "",
    "langfuse_secret_key": "",
    **dict.fromkeys(checks.URL_SECRETS, ""),
    "langfuse_clickhouse_user": "clickhouse",
    "langfuse_clickhouse_password": "",
    "langfuse_admin_email": "ops@example.org",
    "langfuse_admin_password": "",
    "langfuse_init_org_id": "glassbox",
    "langfuse_init_org_name": "glassbox",
    "langfuse_init_project_id": "glassbox",
    "langfuse_init_project_name": "glassbox",
    "langfuse_admin_name": "Admin",
    "langfuse_public_url": "https://lf.example.org",
    "langfuse_version": "4.59.0",
    "langfuse_web_image": "docker.io/langfuse/langfuse:4.59.0",
    "langfuse_worker_image": "docker.io/langfuse/langfuse-worker:4.59.0",
    "langfuse_postgres_image": "docker.io/library/postgres:17.11",
    "langfuse_clickhouse_image": "docker.io/clickhouse/clickhouse-server:26.4.5.143",
    "langfuse_redis_image": "docker.io/library/redis:7.4.11",
    "langfuse_minio_image": "quay.io/minio/minio:RELEASE.2025-09-07T16-13-09Z",
    "langfuse_minio_mc_image": "quay.io/minio/mc@sha256:" + "0" * 64,
    "langfuse_clickhouse_external_url": "",
    "langfuse_clickhouse_external_migration_url": "",
    "langfuse_postgres_external_url": "",
    "langfuse_redis_external_url": "",
    "langfuse_s3_external_endpoint": "",
    "langfuse_s3_region": "",
    "langfuse_s3_event_bucket": "langfuse-events",
    "langfuse_s3_media_bucket": "langfuse-media",
    "langfuse_s3_public_url": "https://lf.example.org:9090",
    "langfuse_s3_public_port": 9090,
    "langfuse_s3_backend_port": 9000,
    "langfuse_media_upload_enabled": True,
    "langfuse_web_bind_address": "",
    "langfuse_web_port": 3000,
    "langfuse_worker_port": 3030,
    "langfuse_llm_connection_hosts": ["gpu1.example.org", "10.0.0.7", "fd00::7", "[fd00::8]"],
    "__langfuse_tls": "True",
    "__langfuse_proxy_port": "443",
}
SECRET = "Sup3r:Secret/%@"  # noqa: S105 - a refused value, not a credential

# case -> (changed inputs, the variable the one message must name)
BAD: dict[str, tuple[dict, str]] = {
    "enc_short": ({"langfuse_encryption_key": "abc123"}, "langfuse_encryption_key"),
    "pk_prefix": ({"langfuse_public_key": "lf-pub-1"}, "langfuse_public_key"),
    "sk_colon": ({"langfuse_secret_key": "sk-lf-a:b"}, "langfuse_secret_key"),
    **{f"secret_{var}": ({var: SECRET}, var) for var in checks.URL_SECRETS},
    "ch_not_hex": ({"langfuse_clickhouse_password": SECRET}, "langfuse_clickhouse_password"),
    "email": ({"langfuse_admin_email": "admin-at-example"}, "langfuse_admin_email"),
    "pw_short": ({"langfuse_admin_password": "Sh0rt"}, "langfuse_admin_password"),
    "pw_quote": ({"langfuse_admin_password": "'Sup3rSecret'"}, "langfuse_admin_password"),
    **{f"init_{var}": ({var: "-bad"}, var) for var in checks.INIT_NAMES},
    "url_no_scheme": ({"langfuse_public_url": "lf.example.org"}, "langfuse_public_url"),
    "bare_major": ({"langfuse_version": "4"}, "langfuse_version"),
    **{f"latest_{var}": ({var: "repo/image:latest"}, var) for var in checks.IMAGES},
    "ch_half": (
        {"langfuse_clickhouse_external_url": "http://ch:8123"},
        "langfuse_clickhouse_external_migration_url",
    ),
    "pg_scheme": (
        {"langfuse_postgres_external_url": "mysql://db"},
        "langfuse_postgres_external_url",
    ),
    "redis_scheme": (
        {"langfuse_redis_external_url": "http://redis"},
        "langfuse_redis_external_url",
    ),
    "s3_no_keys": (
        {
            "langfuse_s3_external_endpoint": "https://s3.example.org",
            "langfuse_s3_region": "eu-central-1",
        },
        "langfuse_s3_access_key",
    ),
    "s3_no_region": (
        {
            "langfuse_s3_external_endpoint": "https://s3.example.org",
            "langfuse_s3_access_key": "AKIAEXAMPLE",
            "langfuse_s3_secret_key": "external-secret",
        },
        "langfuse_s3_region",
    ),
    "region_upper": ({"langfuse_s3_region": "EU"}, "langfuse_s3_region"),
    "media_path": (
        {"langfuse_s3_public_url": "https://lf.example.org:9090/s3"},
        "langfuse_s3_public_url",
    ),
    "media_http": (
        {"langfuse_s3_public_url": "http://lf.example.org:9090"},
        "langfuse_s3_public_url",
    ),
    "tls_bind": ({"langfuse_web_bind_address": "0.0.0.0"}, "langfuse_web_bind_address"),  # noqa: S104 - refused
    "tls_http": ({"langfuse_public_url": "http://lf.example.org:3000"}, "glassbox_tls"),
    "ports": ({"langfuse_worker_port": 3000}, "must differ"),
    "backend_port": ({"langfuse_s3_backend_port": 443}, "langfuse_s3_backend_port"),
    "llm_url": (
        {"langfuse_llm_connection_hosts": ["http://gpu1:8000"]},
        "langfuse_llm_connection_hosts",
    ),
    "llm_wildcard": (
        {"langfuse_llm_connection_hosts": ["*.example.org"]},
        "langfuse_llm_connection_hosts",
    ),
}


def test_good_settings_pass():
    assert checks.problems(GOOD) == []


def test_plain_http_settings_pass():
    plain = {
        **GOOD,
        "__langfuse_tls": False,
        "langfuse_public_url": "http://10.0.0.9:3000",
        "langfuse_s3_public_url": "http://10.0.0.9:9090",
        "langfuse_web_bind_address": "0.0.0.0",  # noqa: S104 - allowed without the proxy
    }
    assert checks.problems(plain) == []


@pytest.mark.parametrize("case", BAD)
def test_each_rule_names_its_variable(case):
    changes, variable = BAD[case]
    found = checks.problems({**GOOD, **changes})
    # The rule's own message comes first (a URL without a scheme also breaks the https rule).
    assert found, f"{case}: {changes} passed"
    assert variable in found[0], found


@pytest.mark.parametrize("case", [c for c in BAD if c.startswith("secret_")] + ["ch_not_hex"])
def test_a_refused_secret_is_not_in_the_message(case):
    (found,) = checks.problems({**GOOD, **BAD[case][0]})
    assert SECRET not in found
    assert "Sup3r" not in found


def test_rules_without_the_proxy_do_not_count_its_ports():
    # 443 is the proxy's port only with glassbox_tls.
    plain = {
        **GOOD,
        "__langfuse_tls": False,
        "langfuse_public_url": "http://h:3000",
        "langfuse_s3_public_url": "http://h:9090",
    }
    assert checks.problems({**plain, "langfuse_s3_backend_port": 443}) == []
    assert checks.problems({**GOOD, "langfuse_s3_backend_port": 443}) != []


def test_media_off_ignores_the_media_endpoint():
    assert (
        checks.problems(
            {**GOOD, "langfuse_media_upload_enabled": False, "langfuse_s3_public_url": "x"}
        )
        == []
    )


def test_every_problem_is_listed_not_only_the_first():
    found = checks.problems({**GOOD, "langfuse_version": "4", "langfuse_admin_email": "x"})
    assert len(found) == 2


def test_a_missing_input_is_a_clear_error():
    with pytest.raises(ValueError, match="langfuse_version"):
        checks.problems({k: v for k, v in GOOD.items() if k != "langfuse_version"})


def test_the_role_hands_over_exactly_the_inputs_the_rules_read():
    role_vars = yaml.safe_load((REPO / "roles" / "langfuse" / "vars" / "main.yml").read_text())
    assert role_vars["__langfuse_check_inputs"] == list(checks.INPUTS)
    assert set(GOOD) == set(checks.INPUTS)
