"""The certificate filters (plugins/filter/tls.py) as plain Python."""

from __future__ import annotations

import hashlib
from pathlib import Path

import certifi
import pytest

from tests.tls_certs import make_ca, make_leaf
from tests.unit import REPO, load_plugin

tls = load_plugin("plugins/filter/tls.py")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("gpu-1.example.org", "dns"),
        ("localhost", "dns"),
        ("a", "dns"),
        ("Example.ORG.", "dns"),
        ("xn--bcher-kva.example", "dns"),
        ("10.0.0.5", "ip"),
        ("::1", "ip"),
        ("2001:db8::1", "ip"),
        ("bad_name", "bad"),
        ("-lead.example.org", "bad"),
        ("trail-.example.org", "bad"),
        ("two..dots", "bad"),
        ("", "bad"),
        (" spaced.example", "bad"),
        ("*.example.org", "bad"),
        ("https://x.example", "bad"),
        ("x" * 64 + ".example", "bad"),
        (".".join(["abcdefghi"] * 26), "bad"),  # 259 characters
        ("10.0.0.256", "bad"),
        ("1.2.3", "bad"),
        (None, "bad"),
    ],
)
def test_host_kind(name, kind):
    assert tls.host_kind(name) == kind


def test_host_kind_accepts_253_characters_and_63_character_labels():
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253
    assert tls.host_kind(name) == "dns"
    assert tls.host_kind(name + "c") == "bad"


def test_san_entries_dedupe_and_normalise():
    assert tls.san_entries(["GPU.example.org", "10.0.0.5", "gpu.example.org", "::0:1"]) == [
        "DNS:gpu.example.org",
        "IP:10.0.0.5",
        "IP:::1",
    ]


CA = make_ca()
WANT = ["DNS:gpu.example.org", "IP:10.0.0.5"]


def test_a_fresh_certificate_is_kept():
    leaf = make_leaf(CA, WANT, days=365)
    assert tls.reissue_reasons(leaf.cert_pem, CA.cert_pem, WANT, 30, leaf.public_pem) == []


def test_reissue_reasons():
    assert tls.reissue_reasons("", CA.cert_pem, WANT, 30) == ["no host certificate yet"]
    assert tls.reissue_reasons("garbage", CA.cert_pem, WANT, 30) == [
        "host.crt is not a PEM certificate"
    ]
    expiring = make_leaf(CA, WANT, days=20)
    (reason,) = tls.reissue_reasons(expiring.cert_pem, CA.cert_pem, WANT, 30)
    assert "within 30 days" in reason
    assert tls.reissue_reasons(expiring.cert_pem, CA.cert_pem, WANT, 10) == []
    other_names = make_leaf(CA, ["DNS:gpu.example.org"], days=365)
    assert "differ" in tls.reissue_reasons(other_names.cert_pem, CA.cert_pem, WANT, 30)[0]
    foreign = make_leaf(make_ca("same name"), WANT, days=365)
    assert tls.reissue_reasons(foreign.cert_pem, CA.cert_pem, WANT, 30) == ["not issued by the CA"]
    rekeyed = make_leaf(CA, WANT, days=365)
    assert tls.reissue_reasons(rekeyed.cert_pem, CA.cert_pem, WANT, 30, foreign.public_pem) == [
        "does not match host.key"
    ]


def test_a_renewal_window_longer_than_the_validity_always_renews():
    leaf = make_leaf(CA, WANT, days=365)
    assert "within 400 days" in tls.reissue_reasons(leaf.cert_pem, CA.cert_pem, WANT, 400)[0]


def _problems(leaf, key_pem=None, host="gpu.example.org"):
    return tls.provided_problems(leaf.cert_pem, key_pem or leaf.key_pem, host)


def test_a_good_provided_chain_passes_with_wildcards_and_ips():
    leaf = make_leaf(CA, ["DNS:*.example.org", "IP:10.0.0.5"])
    chain = leaf.cert_pem + CA.cert_pem
    assert tls.provided_problems(chain, leaf.key_pem, "gpu.example.org") == []
    assert tls.provided_problems(chain, leaf.key_pem, "10.0.0.5") == []
    # a wildcard covers exactly one label
    assert _problems(leaf, host="a.gpu.example.org")
    assert _problems(leaf, host="example.org")


def test_provided_refusals_name_the_variable():
    leaf = make_leaf(CA, ["DNS:gpu.example.org"])
    other = make_leaf(CA, ["DNS:gpu.example.org"])
    (mismatch,) = _problems(leaf, other.key_pem)
    assert "does not match tls_certificate_provided_key" in mismatch
    (expired,) = _problems(make_leaf(CA, ["DNS:gpu.example.org"], days=-1, start_days_ago=30))
    assert expired.startswith("tls_certificate_provided_cert expired on")
    (nearly,) = _problems(make_leaf(CA, ["DNS:gpu.example.org"], days=0.5))
    assert "in less than a day" in nearly
    (wrong,) = _problems(leaf, host="lf.example.org")
    assert "does not cover glassbox_public_host 'lf.example.org'" in wrong
    assert "DNS:gpu.example.org" in wrong
    assert tls.provided_problems("", leaf.key_pem, "gpu.example.org") == [
        "tls_certificate_provided_cert holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    ]
    (nokey,) = tls.provided_problems(leaf.cert_pem, "", "gpu.example.org")
    assert nokey.startswith("tls_certificate_provided_key is not")


def test_trust_bundle_is_the_ca_then_certifi(tmp_path: Path):
    bundle = tls.trust_bundle([CA.cert_pem])
    roots = Path(certifi.where()).read_text(encoding="ascii")
    assert bundle.startswith(CA.cert_pem)
    assert bundle.endswith(roots)
    assert tls.cert_sha256(bundle) == tls.cert_sha256(CA.cert_pem) != ""


def test_scheme_changes_names_keys_not_values():
    old = "LANGFUSE_SECRET_KEY=sk-1\nLANGFUSE_BASE_URL=http://lf:3000\nOPENAI_BASE_URL=http://g:8000/v1\n"
    new = {"LANGFUSE_BASE_URL": "https://lf", "OPENAI_BASE_URL": "http://g:8000/v1"}
    assert tls.scheme_changes(old, new) == ["LANGFUSE_BASE_URL: http -> https"]
    assert tls.scheme_changes("", new) == []


def test_the_smoke_suite_never_turns_verification_off():
    offenders = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / "smoke").rglob("*.py"))
        if "verify=false" in path.read_text(encoding="utf-8").replace(" ", "").lower()
    ]
    assert offenders == []


def test_bad_names_lists_only_the_bad():
    assert tls.bad_names(["ok.example", "10.0.0.1", "bad_name", ""]) == ["bad_name", ""]


def test_connect_ca_file_prefers_the_connection_fact_and_honours_the_switch():
    hostvars = {
        "lf": {"langfuse_connection": {"ca_file": "/c/ca.crt"}, "tls_certificate_ca_file": "/x"},
        "gpu": {"vllm_connection": {}, "tls_certificate_ca_file": "/c/ca.crt"},
        "off": {"glassbox_tls": "false", "tls_certificate_ca_file": "/c/ca.crt"},
        "plain": {"vllm_connection": {"base_url": "http://g"}},
    }
    assert tls.connect_ca_file(["lf", "langfuse_connection"], hostvars) == "/c/ca.crt"
    assert tls.connect_ca_file(["gpu", "vllm_connection"], hostvars) == "/c/ca.crt"
    assert tls.connect_ca_file(["off", "vllm_connection"], hostvars) == ""
    assert tls.connect_ca_file(["plain", "vllm_connection"], hostvars) == ""
    assert tls.connect_ca_file(["", "vllm_connection"], hostvars) == ""


def test_file_differs_on_content_mode_owner_group():
    content = "pem\n"
    found = {
        "checksum": hashlib.sha1(content.encode()).hexdigest(),  # noqa: S324 - find's checksum
        "mode": "0644",
        "pw_name": "root",
        "gr_name": "root",
    }
    assert not tls.file_differs(found, "0644", "root", "root", content)
    assert tls.file_differs(found, "0644", "root", "root", "other\n")
    assert tls.file_differs({**found, "mode": "0664"}, "0644", "root", "root", content)
    assert tls.file_differs({**found, "gr_name": "caddy"}, "0644", "root", "root", content)
    assert not tls.file_differs(
        {**found, "mode": "0640", "gr_name": "caddy"}, "0640", "root", "caddy"
    )
    assert tls.file_differs({}, "0640", "root", "caddy")
