"""The certificate filters (plugins/filter/tls.py) as plain Python."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import certifi
import pytest

from tests.tls_certs import make_ca, make_leaf
from tests.unit import REPO, load_plugin

tls = load_plugin("plugins/filter/tls.py")
glassbox = load_plugin("plugins/filter/glassbox.py")


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


def _settings(**extra):
    return {
        "public_host": "gpu.example.org",
        "extra_names": [],
        "source": "internal",
        "days": 365,
        "renew_days": 30,
        "provided_cert": "",
        "provided_key": "",
        "provided_ca": "",
        "host": "gpu1",
        **extra,
    }


def test_setting_problems_accepts_good_settings():
    assert tls.setting_problems(_settings()) == []
    assert tls.setting_problems(_settings(source="acme", extra_names=["b.example.org"])) == []
    leaf = make_leaf(CA, ["DNS:gpu.example.org"])
    provided = _settings(
        source="provided",
        provided_cert=leaf.cert_pem + CA.cert_pem,
        provided_key=leaf.key_pem,
        provided_ca=CA.cert_pem,
    )
    assert tls.setting_problems(provided) == []


def test_setting_problems_name_the_variables():
    (names,) = tls.setting_problems(_settings(public_host="bad_name", extra_names=["ok.example"]))
    assert names.startswith(
        '"bad_name" in glassbox_public_host ("bad_name") or tls_certificate_extra_names'
        ' (["ok.example"]) is neither a DNS name (RFC 1123'
    )
    (days,) = tls.setting_problems(_settings(days=0, renew_days="x"))
    assert days == (
        "tls_certificate_days (0) must be at least 1 and tls_certificate_renew_days (x) at least 0."
    )
    for host in ("10.0.0.5", "gpu1", "gpu1."):
        (acme,) = tls.setting_problems(_settings(source="acme", public_host=host))
        assert acme.startswith("glassbox_tls_source acme needs public DNS names"), host
    (acme_extra,) = tls.setting_problems(_settings(source="acme", extra_names=["::1"]))
    assert 'tls_certificate_extra_names (["::1"])' in acme_extra


def test_setting_problems_for_provided_list_every_problem_once():
    leaf = make_leaf(CA, ["DNS:gpu.example.org"])
    other = make_leaf(CA, ["DNS:gpu.example.org"])
    (message,) = tls.setting_problems(
        _settings(
            source="provided",
            provided_cert=leaf.cert_pem,
            provided_key=other.key_pem,
            provided_ca="not a pem",
        )
    )
    assert message.startswith("glassbox_tls_source provided on gpu1: ")
    assert "does not match tls_certificate_provided_key" in message
    assert message.endswith("; tls_certificate_provided_ca holds no PEM certificate.")
    assert other.key_pem not in message


def _stdout(root, crt="", ca="", pub="", *, key=True, packages=()):
    lines = [f"pkg ii |{name}|1.0" for name in packages]
    lines.append(f"path {root}|directory|755|root|root")
    for name, text in (("host.crt", crt), ("ca.crt", ca)):
        if text:
            lines.append(f"path {root}/{name}|regular file|644|root|root")
            lines.append(f"sha1 {hashlib.sha1(text.encode()).hexdigest()}  {root}/{name}")  # noqa: S324 - sha1sum
            lines.append(f"pem {name}|{base64.b64encode(text.encode()).decode()}")
    if key:
        lines.append(f"path {root}/host.key|regular file|640|root|caddy")
        if pub:
            lines.append(f"pub host.key|{base64.b64encode(pub.encode()).decode()}")
    return "\n".join(lines) + "\n"


def _state(stdout, root="/etc/glassbox/tls"):
    return tls.host_state(glassbox.host_probe(stdout), stdout, root)


def test_host_state_reads_the_files_the_key_and_the_packages():
    leaf = make_leaf(CA, WANT)
    root = "/etc/glassbox/tls"
    out = _stdout(root, leaf.cert_pem, CA.cert_pem, leaf.public_pem, packages=["openssl"])
    state = _state(out)
    assert state["dir"] == {"type": "directory", "mode": "755", "owner": "root", "group": "root"}
    assert (state["crt"], state["ca"], state["key"]) == (leaf.cert_pem, CA.cert_pem, True)
    assert state["key_public"] == leaf.public_pem
    assert "openssl" in state["installed"]
    # the find-shaped entries are what file_differs compares with
    assert not tls.file_differs(state["files"]["ca.crt"], "0644", "root", "root", CA.cert_pem)
    assert tls.file_differs(state["files"]["ca.crt"], "0644", "root", "root", leaf.cert_pem)
    assert not tls.file_differs(state["files"]["host.key"], "0640", "root", "caddy")
    assert tls.file_differs(state["files"]["host.key"], "0600", "root", "caddy")
    assert tls.reissue_reasons(state["crt"], CA.cert_pem, WANT, 30, state["key_public"]) == []


def test_host_state_of_an_empty_or_missing_directory():
    state = _state(_stdout("/d", key=False))
    assert (state["crt"], state["ca"], state["key"], state["key_public"]) == ("", "", False, "")
    assert state["files"] == {"host.crt": {}, "host.key": {}, "ca.crt": {}}
    assert _state("")["dir"] == {}
    # a key without openssl on the host: present, public half unknown (the module reads it)
    assert _state(_stdout("/d", key=True))["key_public"] == ""


def test_host_state_ignores_a_broken_record_and_a_trailing_slash():
    out = _stdout("/d", CA.cert_pem, key=False).replace("pem host.crt|", "pem host.crt|!")
    state = _state(out, "/d/")
    assert state["crt"] == ""
    assert state["files"]["host.crt"] != {}


def _hostvars(**hosts):
    return {
        name: {
            "__tls_certificate_probe": {"stdout": _stdout("/d", ca=ca)},
            "__tls_certificate_due": due,
        }
        for name, (ca, due) in hosts.items()
    }


CONTROLLER = {
    "ca_crt": "/inv/credentials/tls/ca.crt",
    "ca_crt_file": True,
    "ca_key": "/inv/credentials/tls/ca.key",
    "ca_key_file": True,
    "rotate": False,
    "host_dir": "/etc/glassbox/tls",
}


def test_ca_plan_keeps_the_ca_and_finds_the_hosts_ca():
    other = make_ca("other")
    hostvars = _hostvars(a=(CA.cert_pem, []), b=(CA.cert_pem, ["expires soon"]), c=("", []))
    assert tls.host_cas(["a", "b", "c"], hostvars) == [CA.cert_pem]
    hostvars["d"] = {}  # a host the read did not run on (glassbox_tls false, acme)
    # a provided host's ca.crt is the user's CA, never the internal one
    hostvars["p"] = {**_hostvars(p=(other.cert_pem, []))["p"], "glassbox_tls_source": "provided"}
    assert tls.host_cas(["a", "d", "p"], hostvars) == [CA.cert_pem]
    plan = tls.ca_plan(["a", "b", "c"], hostvars, CONTROLLER)
    assert plan == {"problems": [], "make_ca": False}
    # the controller lost ca.crt (not the key): restored from the hosts, not made
    lost = {**CONTROLLER, "ca_crt_file": False}
    assert tls.ca_plan(["a", "b"], hostvars, lost) == {"problems": [], "make_ca": False}
    # nowhere a CA: made
    assert tls.ca_plan(["c"], hostvars, lost)["make_ca"] is True
    # hosts that disagree while the controller has none: stop, no new CA
    hostvars["e"] = _hostvars(e=(other.cert_pem, []))["e"]
    plan = tls.ca_plan(["a", "e"], hostvars, lost)
    assert plan["make_ca"] is False
    assert plan["problems"] == [
        "/inv/credentials/tls/ca.crt is missing and the hosts hold 2 different ca.crt files in"
        " /etc/glassbox/tls (hosts: a, e). Put the right CA certificate back at"
        " /inv/credentials/tls/ca.crt and run again."
    ]


def test_ca_plan_stops_when_the_key_is_lost_and_a_certificate_is_due():
    hostvars = _hostvars(a=(CA.cert_pem, []), b=(CA.cert_pem, ["expires soon", "names differ"]))
    no_key = {**CONTROLLER, "ca_key_file": False}
    plan = tls.ca_plan(["a", "b"], hostvars, no_key)
    (message,) = plan["problems"]
    assert message.startswith(
        "Host certificates must be issued (b: expires soon, names differ), but the CA key"
        " credentials/tls/ca.key (/inv/credentials/tls/ca.key) is missing"
    )
    assert "tls_certificate_ca_rotate=true" in message
    # only ca_rotate makes a new CA
    assert tls.ca_plan(["a", "b"], hostvars, {**no_key, "rotate": "true"}) == {
        "problems": [],
        "make_ca": True,
    }
    # nothing due: the lost key stops nothing and no CA is made
    calm = _hostvars(a=(CA.cert_pem, []))
    assert tls.ca_plan(["a"], calm, no_key) == {"problems": [], "make_ca": False}


def test_host_todo_names_only_what_differs():
    leaf = make_leaf(CA, WANT)
    root = "/etc/glassbox/tls"
    out = _stdout(root, leaf.cert_pem, CA.cert_pem, leaf.public_pem, packages=["openssl"])
    wanted = {"packages": ["openssl"], "key_group": "caddy", "reasons": [], "ca_pem": CA.cert_pem}
    assert tls.host_todo(_state(out), wanted) == []
    assert tls.host_todo(_state(out), {**wanted, "packages": ["openssl", "python3-x"]}) == [
        "packages"
    ]
    assert tls.host_todo(_state(out.replace("|755|", "|700|")), wanted) == ["dir"]
    assert tls.host_todo(_state(out.replace("|640|root|caddy", "|644|root|caddy")), wanted) == [
        "key"
    ]
    assert tls.host_todo(_state(out), {**wanted, "key_group": "root"}) == ["key"]
    # a kept certificate's mode is put back; a due one is issued (which writes the mode too)
    drifted = out.replace(f"{root}/host.crt|regular file|644", f"{root}/host.crt|regular file|600")
    assert tls.host_todo(_state(drifted), wanted) == ["certificate_mode"]
    assert tls.host_todo(_state(drifted), {**wanted, "reasons": ["names differ"]}) == [
        "certificate"
    ]
    assert tls.host_todo(_state(out), {**wanted, "ca_pem": make_ca("new").cert_pem}) == ["ca"]
    assert tls.host_todo(_state(out), {**wanted, "ca_pem": ""}) == []
    assert tls.host_todo(_state(""), {**wanted, "reasons": ["no host certificate yet"]}) == [
        "packages",
        "dir",
        "key",
        "certificate",
        "ca",
    ]
