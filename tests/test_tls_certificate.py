"""roles/tls_certificate for real: ansible-playbook on local hosts, each with its own temporary
certificate directory, the controller's credentials/ beside a throwaway inventory.

One lifecycle (CA made once, re-run and --check unchanged, ca.crt restored from a host, forced
renewal, refusal without the CA key, a new CA only with tls_certificate_ca_rotate) and one
matrix of refusals (provided, acme, bad names) in one run and its --check re-run, and hosts
that disagree on the CA: nine ansible-playbook runs in all.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.ansible_run import LOCAL, PlaybookRun, play
from tests.tls_certs import make_ca, make_leaf

pytestmark = [pytest.mark.roles, pytest.mark.timeout(600)]

COMMON = {**LOCAL, "tls_certificate_key_group": "root", "tls_certificate_host_packages": []}
PLAY = [
    {
        "name": "certificates",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {"name": "run the role", "ansible.builtin.include_role": {"name": "tls_certificate"}},
            {
                "name": "show the published CA file",
                "ansible.builtin.debug": {"var": "tls_certificate_ca_file"},
            },
        ],
    }
]


def _inventory(root: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    inventory = root / "inventory" / "hosts.yml"
    inventory.parent.mkdir(parents=True, exist_ok=True)
    for name, host_vars in hosts.items():
        host_vars.setdefault("glassbox_tls_dir", str(root / "hosts" / name))
    inventory.write_text(yaml.safe_dump({"all": {"vars": COMMON, "hosts": hosts}}))
    return inventory


def _run(root: Path, inventory: Path, step: str, **kwargs: Any) -> PlaybookRun:
    return play(root / step, PLAY, inventory=inventory, **kwargs)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): _sha(path)
        for path in sorted(root.glob("**/*"))
        if path.is_file() and path.suffix in {".crt", ".key"}
    }


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(cert: x509.Certificate) -> list[str]:
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [f"DNS:{n}" for n in sans.get_values_for_type(x509.DNSName)] + [
        f"IP:{n}" for n in sans.get_values_for_type(x509.IPAddress)
    ]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _published(run: PlaybookRun, host: str) -> str:
    for task in run.report["plays"][0]["tasks"]:
        if task["task"]["name"] == "show the published CA file":
            return task["hosts"][host]["tls_certificate_ca_file"]
    raise AssertionError(f"no published CA file for {host}")


def _check_issued(tls: Path, h1: Path, h2: Path) -> x509.Certificate:
    """The controller's CA (files and modes) and both hosts' files issued by it; the CA."""
    ca = _cert(tls / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (_mode(tls), _mode(tls / "ca.key"), _mode(tls / "ca.crt")) == (0o700, 0o600, 0o644)
    for host, names in ((h1, ["DNS:h1.example.test"]), (h2, ["DNS:localhost", "IP:127.0.0.1"])):
        leaf = _cert(host / "host.crt")
        leaf.verify_directly_issued_by(ca)
        assert _names(leaf) == names
        assert (host / "ca.crt").read_bytes() == (tls / "ca.crt").read_bytes()
        assert _mode(host / "host.key") == 0o640
    assert not (tls / "host.key").exists()
    return ca


def _check_a_fresh_controller_gets_the_ca_back(
    tmp_path: Path, inventory: Path, hosts: dict[str, dict[str, Any]], tls: Path
) -> None:
    # A fresh controller (credentials/tls gone, key and all) and no certificate due: the CA comes
    # back from the hosts into a directory made again; no new CA, no key, nothing issued.
    rotated_sha = _sha(tls / "ca.crt")
    issued = _snapshot(tmp_path)
    hosts["h2"].pop("tls_certificate_renew_days")
    _inventory(tmp_path, hosts)
    shutil.rmtree(tls)
    fresh = _run(tmp_path, inventory, "fresh")
    assert fresh.rc == 0, fresh.output
    assert _sha(tls / "ca.crt") == rotated_sha
    assert _mode(tls) == 0o700
    assert not (tls / "ca.key").exists()
    now = _snapshot(tmp_path)
    for name in ("h1", "h2"):
        assert now[f"hosts/{name}/host.crt"] == issued[f"hosts/{name}/host.crt"]


def test_internal_ca_lifecycle(tmp_path: Path) -> None:
    hosts = {
        "h1": {"glassbox_public_host": "h1.example.test"},
        "h2": {"glassbox_public_host": "127.0.0.1", "tls_certificate_extra_names": ["localhost"]},
    }
    inventory = _inventory(tmp_path, hosts)
    tls = inventory.parent / "credentials" / "tls"
    h1, h2 = tmp_path / "hosts" / "h1", tmp_path / "hosts" / "h2"

    first = _run(tmp_path, inventory, "first")
    assert first.rc == 0, first.output
    ca = _check_issued(tls, h1, h2)
    assert _published(first, "h1") == str(tls / "ca.crt")
    converged = _snapshot(tmp_path)

    again = _run(tmp_path, inventory, "again")
    assert again.rc == 0, again.output
    assert (again.changed("h1"), again.changed("h2")) == (0, 0)
    check = _run(tmp_path, inventory, "check", check=True, diff=True)
    assert check.rc == 0, check.output
    assert (check.changed("h1"), check.changed("h2")) == (0, 0)
    assert _snapshot(tmp_path) == converged

    # The controller's ca.crt is lost: it comes back from the hosts, the same CA; h2 is due
    # (a renewal window longer than the validity) and is issued again by that same CA. h1's
    # kept certificate lost its mode (the proxy could not read it): only the mode is put back.
    ca_sha = _sha(tls / "ca.crt")
    (tls / "ca.crt").unlink()
    (h1 / "host.crt").chmod(0o600)
    hosts["h2"]["tls_certificate_renew_days"] = 400
    _inventory(tmp_path, hosts)
    restored = _run(tmp_path, inventory, "restored")
    assert restored.rc == 0, restored.output
    assert _sha(tls / "ca.crt") == ca_sha, "a new CA was made instead of restoring the old one"
    after = _snapshot(tmp_path)
    assert after["hosts/h1/host.crt"] == converged["hosts/h1/host.crt"]
    assert _mode(h1 / "host.crt") == 0o644
    assert after["hosts/h2/host.crt"] != converged["hosts/h2/host.crt"], "h2 was not renewed"
    assert after["hosts/h2/host.key"] == converged["hosts/h2/host.key"]
    ca_key = "inventory/credentials/tls/ca.key"
    assert after[ca_key] == converged[ca_key]
    _cert(h2 / "host.crt").verify_directly_issued_by(ca)

    # The CA key is lost and h2 is due: stop, naming the key and the flag, change nothing.
    (tls / "ca.key").unlink()
    before = _snapshot(tmp_path)
    stopped = _run(tmp_path, inventory, "stopped")
    assert stopped.rc != 0
    assert "credentials/tls/ca.key" in stopped.output
    assert "tls_certificate_ca_rotate" in stopped.output
    assert (stopped.changed("h1"), stopped.changed("h2")) == (0, 0)
    assert _snapshot(tmp_path) == before
    assert not (tls / "ca.key").exists()

    # Only tls_certificate_ca_rotate makes a new CA; every host certificate moves to it.
    rotated = _run(tmp_path, inventory, "rotated", extra_vars={"tls_certificate_ca_rotate": True})
    assert rotated.rc == 0, rotated.output
    _check_issued(tls, h1, h2)
    assert _sha(tls / "ca.crt") != ca_sha

    _check_a_fresh_controller_gets_the_ca_back(tmp_path, inventory, hosts, tls)


def test_refusals_and_provided(tmp_path: Path) -> None:
    ca = make_ca("provided test CA")
    good = make_leaf(ca, ["DNS:*.example.test"])
    other = make_leaf(ca, ["DNS:ok.example.test"])
    expired = make_leaf(ca, ["DNS:old.example.test"], days=-2, start_days_ago=30)

    def provided(host: str, leaf, key_pem: str, **extra: Any) -> dict[str, Any]:
        return {
            "glassbox_tls_source": "provided",
            "glassbox_public_host": host,
            "tls_certificate_provided_cert": leaf.cert_pem + ca.cert_pem,
            "tls_certificate_provided_key": key_pem,
            **extra,
        }

    hosts = {
        "prov-ok": provided(
            "ok.example.test", good, good.key_pem, tls_certificate_provided_ca=ca.cert_pem
        ),
        "prov-mismatch": provided("ok.example.test", good, other.key_pem),
        "prov-expired": provided("old.example.test", expired, expired.key_pem),
        "prov-wrong-san": provided("a.b.example.test", good, good.key_pem),
        "bad-name": {"glassbox_public_host": "bad_name"},
        "acme-ip": {"glassbox_tls_source": "acme", "glassbox_public_host": "10.0.0.5"},
        "acme-dotless": {"glassbox_tls_source": "acme", "glassbox_public_host": "gpu1"},
        "acme-ok": {"glassbox_tls_source": "acme", "glassbox_public_host": "gpu.example.org"},
        "tls-off": {"glassbox_tls": False, "glassbox_public_host": "bad_name"},
    }
    inventory = _inventory(tmp_path, hosts)
    run = _run(tmp_path, inventory, "run")
    expected = {
        "prov-mismatch": "does not match tls_certificate_provided_key",
        "prov-expired": "tls_certificate_provided_cert expired on",
        "prov-wrong-san": "does not cover glassbox_public_host 'a.b.example.test'",
        "bad-name": '"bad_name" in glassbox_public_host',
        "acme-ip": "glassbox_tls_source acme needs public DNS names",
        "acme-dotless": "glassbox_tls_source acme needs public DNS names",
    }
    assert run.failed_hosts() == set(expected), run.output
    for host, message in expected.items():
        assert any(message in failure for failure in run.failures(host)), (host, run.failures(host))
        assert not (tmp_path / "hosts" / host).exists(), f"{host}: refused but a file was written"
    assert good.key_pem not in run.output
    assert other.key_pem not in run.output

    ok = tmp_path / "hosts" / "prov-ok"
    assert (ok / "host.crt").read_text() == good.cert_pem + ca.cert_pem
    assert (ok / "host.key").read_text() == good.key_pem
    assert _mode(ok / "host.key") == 0o640
    assert (ok / "ca.crt").read_text() == ca.cert_pem
    controller_ca = inventory.parent / "credentials" / "tls" / "provided-ca-prov-ok.crt"
    assert controller_ca.read_text() == ca.cert_pem
    assert _published(run, "prov-ok") == str(controller_ca)
    assert _published(run, "acme-ok") == ""
    assert not (tmp_path / "hosts" / "acme-ok").exists()
    assert _published(run, "tls-off") == ""
    assert not (tmp_path / "hosts" / "tls-off").exists()

    again = _run(tmp_path, inventory, "again", limit="prov-ok,acme-ok,tls-off", check=True)
    assert again.rc == 0, again.output
    assert [again.changed(h) for h in ("prov-ok", "acme-ok", "tls-off")] == [0, 0, 0]
    assert not (inventory.parent / "credentials" / "tls" / "ca.key").exists()


def test_hosts_holding_different_cas_stop_the_run(tmp_path: Path) -> None:
    """The controller lost ca.crt and the hosts disagree on it: no guess, no new CA."""
    hosts = {"a": {"glassbox_public_host": "a.example.test"}, "b": {"glassbox_public_host": "b"}}
    inventory = _inventory(tmp_path, hosts)
    for name in hosts:
        (tmp_path / "hosts" / name).mkdir(parents=True)
        (tmp_path / "hosts" / name / "ca.crt").write_text(make_ca(f"CA {name}").cert_pem)
    before = _snapshot(tmp_path)
    run = _run(tmp_path, inventory, "run")
    assert run.rc != 0
    tls = inventory.parent / "credentials" / "tls"
    assert f"{tls / 'ca.crt'} is missing and the hosts hold 2 different ca.crt files" in run.output
    assert (run.changed("a"), run.changed("b")) == (0, 0)
    assert _snapshot(tmp_path) == before
    assert not tls.exists()
