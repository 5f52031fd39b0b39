"""preflight's OS facts (filter_plugins/preflight_os.py) from its raw read, as plain Python.

The os-release lines are those of the systems' own files (ID, VERSION_ID, VERSION_CODENAME);
tests/test_host_roles.py compares the whole path with the setup module on this machine.
"""

from __future__ import annotations

import pytest

from tests.unit import load_plugin

_os_facts = load_plugin("roles/preflight/filter_plugins/preflight_os.py").os_facts
host_probe = load_plugin("plugins/filter/glassbox.py").host_probe


def os_facts(stdout: str) -> dict:
    """As roles/preflight/vars/main.yml wires it: the probe records' values into the filter."""
    return _os_facts(host_probe(stdout)["values"])


def read(
    os_release: dict[str, str],
    debian_version: str | None,
    kernel="6.1.0-40-amd64",
    machine="x86_64",
) -> str:
    lines = [f"value {key}|{value}" for key, value in os_release.items()]
    if debian_version is not None:
        lines.append(f"value debian_version|{debian_version}")
    return "\n".join([*lines, f"value kernel|{kernel}", f"value machine|{machine}"]) + "\n"


@pytest.mark.parametrize(
    ("os_release", "debian_version", "want"),
    [
        # Debian: the point release from /etc/debian_version, as setup gives it.
        (
            {"ID": "debian", "VERSION_ID": '"12"', "VERSION_CODENAME": "bookworm"},
            "12.11",
            ("Debian", "12.11", "12", "bookworm"),
        ),
        (
            {"ID": "debian", "VERSION_ID": '"13"', "VERSION_CODENAME": "trixie"},
            "13.8",
            ("Debian", "13.8", "13", "trixie"),
        ),
        # Ubuntu: os-release's version; its debian_version names a Debian codename.
        (
            {"ID": "ubuntu", "VERSION_ID": '"24.04"', "VERSION_CODENAME": "noble"},
            "trixie/sid",
            ("Ubuntu", "24.04", "24", "noble"),
        ),
        (
            {"ID": "ubuntu", "VERSION_ID": '"22.04"', "VERSION_CODENAME": "jammy"},
            "bookworm/sid",
            ("Ubuntu", "22.04", "22", "jammy"),
        ),
    ],
)
def test_debian_and_ubuntu_facts_are_those_setup_gives(os_release, debian_version, want):
    facts = os_facts(read(os_release, debian_version, machine="aarch64"))
    assert (
        facts["distribution"],
        facts["distribution_version"],
        facts["distribution_major_version"],
        facts["distribution_release"],
    ) == want
    assert (facts["architecture"], facts["kernel"], facts["os_family"]) == (
        "aarch64",
        "6.1.0-40-amd64",
        "Debian",
    )


@pytest.mark.parametrize(
    "stdout",
    [
        # another system: setup says (preflight then reports it as unsupported, in setup's words)
        read({"ID": "fedora", "VERSION_ID": "41"}, None),
        read({"ID": "raspbian", "VERSION_ID": '"12"', "VERSION_CODENAME": "bookworm"}, "12.4"),
        # Debian testing: no VERSION_ID, a codename in debian_version
        read({"ID": "debian", "VERSION_CODENAME": "forky"}, "forky/sid"),
        # no codename, no kernel, nothing at all
        read({"ID": "ubuntu", "VERSION_ID": '"24.04"'}, "trixie/sid"),
        "value ID|debian\nvalue VERSION_ID|12\nvalue VERSION_CODENAME|bookworm\n"
        "value machine|x86_64\n",
        "",
    ],
)
def test_anything_else_is_left_to_setup(stdout):
    assert os_facts(stdout) == {}


def test_the_disk_memory_and_pci_lines_of_the_same_read_are_ignored():
    stdout = "disk 120\nmemory_kb 16000000\ngpu 0000:01:00.0\n" + read(
        {"ID": "debian", "VERSION_ID": "13", "VERSION_CODENAME": "trixie"}, "13.1"
    )
    assert os_facts(stdout)["distribution_version"] == "13.1"
