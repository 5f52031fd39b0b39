"""The proxy's site rules (roles/reverse_proxy/filter_plugins/reverse_proxy.py): milliseconds."""

from __future__ import annotations

import pytest

from tests.unit import load_plugin

plan = load_plugin("roles/reverse_proxy/filter_plugins/reverse_proxy.py")

GOOD = {
    "name": "vllm-qwen",
    "port": 8000,
    "upstream": "127.0.0.1:18000",
    "bearer_key": "sk-vllm-AbC_12.3~x+/=",
    "bearer_paths": ["/v1/*", "/health"],
    "metrics_cidrs": ["127.0.0.1/32", "10.0.0.0/8", "::1/128"],
}


def test_a_good_site_has_no_problems():
    assert plan.site_problems(GOOD) == []
    assert plan.site_problems({**GOOD, "bearer_key": ""}) == []


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("name", "Vllm/Qwen", "reverse_proxy_site.name"),
        ("port", 0, "reverse_proxy_site.port is 0"),
        ("port", 70000, "allowed 1-65535"),
        ("upstream", "127.0.0.1", "reverse_proxy_site.upstream"),
        ("upstream", "127.0.0.1:99999", "reverse_proxy_site.upstream"),
        ("bearer_key", "sk key", "reverse_proxy_site.bearer_key"),
        ("bearer_key", 'sk"x', "reverse_proxy_site.bearer_key"),
        ("bearer_key", "sk-*", "reverse_proxy_site.bearer_key"),
        ("bearer_key", "sk-{env.X}", "reverse_proxy_site.bearer_key"),
        ("bearer_paths", ["v1/*"], "reverse_proxy_site.bearer_paths"),
        ("metrics_cidrs", ["10.0.0.0/33"], "reverse_proxy_site.metrics_cidrs"),
    ],
)
def test_each_bad_field_is_named(field, value, words):
    problems = plan.site_problems({**GOOD, field: value})
    assert len(problems) == 1
    assert words in problems[0]


def test_a_refused_key_is_not_repeated_in_the_message():
    assert all("sk bad" not in p for p in plan.site_problems({**GOOD, "bearer_key": "sk bad"}))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("gpu-1.example.org", "gpu-1.example.org:8000"),
        ("10.0.0.5", "10.0.0.5:8000"),
        ("fd00::5", "[fd00::5]:8000"),
        ("[fd00::5]", "[fd00::5]:8000"),
    ],
)
def test_site_address(host, expected):
    assert plan.address(host, 8000) == expected


def test_ports_add_the_site_and_the_redirect_port_once():
    assert plan.ports(None, GOOD, 80) == [80, 8000]
    assert plan.ports([80, 443], GOOD, 80) == [80, 443, 8000]
    assert plan.ports([80, 443], {**GOOD, "state": "absent"}, 80) == [80, 443]
