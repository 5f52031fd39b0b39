"""The project-wide filters (plugins/filter/glassbox.py) as plain Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "glassbox_filters", REPO / "plugins" / "filter" / "glassbox.py"
)
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)


def test_credentials_beside_the_hosts_own_inventory(tmp_path):
    assert filters.credentials_dir("/srv/inv/prod", [str(tmp_path)]) == "/srv/inv/prod/credentials"


def test_credentials_beside_an_inventory_directory_given_with_i(tmp_path):
    assert filters.credentials_dir(None, [str(tmp_path)]) == str(tmp_path / "credentials")


def test_credentials_beside_an_inventory_file_given_with_i(tmp_path):
    hosts = tmp_path / "hosts.yml"
    hosts.write_text("all: {}\n")
    assert filters.credentials_dir("", [str(hosts)]) == str(tmp_path / "credentials")


def test_no_inventory_at_all_is_an_error():
    with pytest.raises(ValueError, match="-i <inventory>"):
        filters.credentials_dir(None, [])


@pytest.mark.parametrize(
    ("bind", "probe"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("", "127.0.0.1"), ("10.1.2.3", "10.1.2.3")],  # noqa: S104
)
def test_probe_host(bind, probe):
    assert filters.probe_host(bind) == probe


def test_env_files_are_secret_0600_files_in_their_subdirectory():
    assert filters.env_files(["web"], "/r/templates") == [
        {"src": "/r/templates/web.env.j2", "dest": "env/web.env", "mode": "0600", "secret": True}
    ]
    assert filters.env_files(["vllm"], "/t", subdir="")[0]["dest"] == "vllm.env"


def test_host_addresses_follow_vllm_public_host_then_ansible_host_then_the_name():
    hostvars = {
        "gpu1": {"vllm_public_host": "llm.example.internal", "ansible_host": "10.0.0.1"},
        "gpu2": {"ansible_host": "10.0.0.2"},
        "gpu3": {},
    }
    got = filters.host_addresses(["gpu1", "gpu2", "gpu3"], hostvars, "vllm_public_host")
    assert got == ["llm.example.internal", "10.0.0.2", "gpu3"]
