"""The shipped inventories parse, and generated credentials beside them are never read as hosts."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.ansible_run import REPO, ansible_tool


def inventory_hosts(source) -> dict:
    return json.loads(ansible_tool("ansible-inventory", "-i", str(source), "--list"))


@pytest.mark.parametrize("name", ["local", "example"])
def test_inventory_has_both_groups(name):
    listing = inventory_hosts(REPO / "inventories" / name)
    assert listing["inference"]["hosts"], f"{name}: no inference host"
    assert listing["observability"]["hosts"], f"{name}: no observability host"


@pytest.mark.parametrize(("name", "tls"), [("example", True), ("local", False)])
def test_tls_is_on_for_servers_and_off_for_a_workstation(name, tls):
    """inventories/example (servers) runs the TLS proxy; inventories/local (this machine) does
    not: it would take ports 80 and 443 of a workstation."""
    meta = inventory_hosts(REPO / "inventories" / name)["_meta"]["hostvars"]
    assert meta, f"{name}: no host"
    for host, host_vars in meta.items():
        assert host_vars.get("glassbox_tls") is tls, f"{name}/{host}: glassbox_tls"


def test_credentials_beside_an_inventory_directory_are_not_hosts(tmp_path):
    inventory = tmp_path / "inv"
    shutil.copytree(REPO / "inventories" / "local", inventory)
    credentials = inventory / "credentials"
    (credentials / "localhost").mkdir(parents=True)
    (credentials / "app.env").write_text("LANGFUSE_SECRET_KEY=sk-lf-0123456789abcdef\n")
    (credentials / "localhost" / "langfuse.json").write_text('{"salt": "00ff"}\n')
    listing = inventory_hosts(inventory)
    assert set(listing["_meta"]["hostvars"]) == {"localhost"}
    assert "sk-lf-0123456789abcdef" not in json.dumps(listing)
