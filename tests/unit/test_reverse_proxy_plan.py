"""The proxy's site rules (roles/reverse_proxy/filter_plugins/reverse_proxy.py): milliseconds."""

from __future__ import annotations

import hashlib

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


# What the role's probe (tasks/probe.yml) prints on a converged host, parsed by the project's one
# probe parser: the sites directory holds two model sites, an empty file, a langfuse site and a
# directory that only look like sites.
glassbox = load_plugin("plugins/filter/glassbox.py")
SITES = "/etc/caddy/sites.d"
SITE_TEXT = "# Ansible managed\nhost:8000 {\n}\n"
SITE_SHA1 = hashlib.sha1(SITE_TEXT.encode()).hexdigest()  # noqa: S324 - what sha1sum prints
PROBE = "\n".join(
    [
        "pkg ii |caddy|2.6.2-5",
        f"path {SITES}|directory|750|root|caddy",
        "path /run/caddy/admin.sock|socket|755|caddy|caddy",
        f"path {SITES}/vllm-a.caddy|regular file|640|root|caddy",
        f"path {SITES}/vllm-b.caddy|regular file|640|root|caddy",
        f"path {SITES}/vllm-empty.caddy|regular empty file|640|root|caddy",
        f"path {SITES}/vllm-dir.caddy|directory|755|root|root",
        f"path {SITES}/langfuse.caddy|regular file|640|root|caddy",
        f"sha1 {SITE_SHA1}  {SITES}/vllm-a.caddy",
        f"sha1 {SITE_SHA1}  {SITES}/vllm-b.caddy",
        f"sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709  {SITES}/vllm-empty.caddy",
        f"sha1 {SITE_SHA1}  {SITES}/langfuse.caddy",
        "unit active|enabled",
    ]
)
NOW = glassbox.host_probe(PROBE)


def test_a_probed_site_file_compares_like_find_and_skips_when_it_matches():
    found = glassbox.probed_file(NOW, f"{SITES}/vllm-a.caddy")
    assert found == {"checksum": SITE_SHA1, "mode": "640", "pw_name": "root", "gr_name": "caddy"}
    assert glassbox.file_differs(found, SITE_TEXT, {"mode": "0640"}, "root", "caddy") is False


@pytest.mark.parametrize(
    ("content", "mode", "group"),
    [
        (SITE_TEXT + "# drift\n", "0640", "caddy"),  # content
        (SITE_TEXT, "0600", "caddy"),  # mode
        (SITE_TEXT, "0640", "root"),  # group (root:caddy on the host)
    ],
    ids=["content", "mode", "group"],
)
def test_a_probed_site_file_that_differs_goes_through_the_template_module(content, mode, group):
    found = glassbox.probed_file(NOW, f"{SITES}/vllm-a.caddy")
    assert glassbox.file_differs(found, content, {"mode": mode}, "root", group) is True


def test_a_missing_path_or_a_directory_is_no_probed_file():
    assert glassbox.probed_file(NOW, f"{SITES}/vllm-gone.caddy") == {}
    assert glassbox.probed_file(NOW, f"{SITES}/vllm-dir.caddy") == {}
    assert glassbox.probed_file(NOW, SITES) == {}
    # an empty regular file is a file (stat calls it "regular empty file")
    assert glassbox.probed_file(NOW, f"{SITES}/vllm-empty.caddy")["checksum"].startswith("da39")


def test_prune_removes_the_prefix_files_not_kept_and_nothing_else():
    assert plan.prune(NOW, SITES, "vllm-", ["vllm-a"]) == [
        f"{SITES}/vllm-b.caddy",
        f"{SITES}/vllm-empty.caddy",
    ]
    assert plan.prune(NOW, SITES, "vllm-", ["vllm-a", "vllm-b", "vllm-empty"]) == []
    assert plan.prune(NOW, SITES, "langfuse", []) == [f"{SITES}/langfuse.caddy"]


def test_prune_on_a_host_without_sites_finds_nothing():
    assert plan.prune(glassbox.host_probe("unit inactive|not-found\n"), SITES, "vllm-", []) == []
    # another configuration directory's sites are not this one's
    assert plan.prune(NOW, "/srv/other/sites.d", "vllm-", []) == []


# The `sites` entry point: one call with every site of a service.
DEFAULTS = {"state": "present", "bearer_key": "", "bearer_paths": ["/v1/*"], "flush": False}


def test_site_specs_fill_the_optional_fields_and_keep_what_is_given():
    specs = plan.site_specs([{"name": "a", "port": 1, "flush": True}], DEFAULTS)
    assert specs == [{**DEFAULTS, "name": "a", "port": 1, "flush": True}]
    assert plan.site_specs(None, DEFAULTS) == []


def test_sites_problems_name_the_index_and_the_field_and_a_name_given_twice():
    good = {**GOOD, "name": "vllm-b", "port": 8001}
    assert plan.sites_problems([GOOD, good]) == []
    problems = plan.sites_problems([GOOD, {**good, "port": 0}, {**GOOD, "bearer_key": ""}])
    assert problems == [
        "reverse_proxy_sites[1].port is 0: allowed 1-65535.",
        'reverse_proxy_sites[2].name "vllm-qwen" is given twice: each site is one file '
        "sites.d/<name>.caddy.",
    ]
    assert "reverse_proxy_sites is str" in plan.sites_problems("vllm")[0]
    assert "reverse_proxy_sites[0] is str" in plan.sites_problems(["vllm"])[0]


def test_sites_ports_are_every_present_site_and_the_redirect_port():
    sites = [GOOD, {**GOOD, "name": "b", "port": 8001}, {**GOOD, "port": 9000, "state": "absent"}]
    assert plan.sites_ports([443], sites, 80) == [80, 443, 8000, 8001]
    assert plan.sites_ports(None, [], 80) == []


def test_sites_removals_are_absent_sites_found_and_with_a_prefix_the_unlisted_ones():
    a = {**GOOD, "name": "vllm-a"}
    gone = {**GOOD, "name": "vllm-b", "state": "absent"}
    never = {**GOOD, "name": "vllm-never", "state": "absent"}
    # without a prefix: only the absent spec whose file exists
    assert plan.sites_removals(NOW, [a, gone, never], SITES, "") == [f"{SITES}/vllm-b.caddy"]
    # with the prefix: every other vllm- file too (vllm-empty), never the listed present site
    assert plan.sites_removals(NOW, [a, gone], SITES, "vllm-") == [
        f"{SITES}/vllm-b.caddy",
        f"{SITES}/vllm-empty.caddy",
    ]
    assert (
        plan.sites_removals(
            NOW, [a, {**GOOD, "name": "vllm-b"}, {**GOOD, "name": "vllm-empty"}], SITES, "vllm-"
        )
        == []
    )
