"""preflight on this machine, for real: OS/arch/resource checks and GPU detection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.ansible_run import role_play, run_playbook

pytestmark = pytest.mark.roles

REPORT = {
    "name": "report the facts",
    "ansible.builtin.copy": {
        "content": "{{ {'present': preflight_gpu_present, 'count': preflight_gpu_count,"
        " 'pci': preflight_gpu_pci_addresses, 'nvswitch': preflight_nvswitch_present,"
        " 'nvswitch_count': preflight_nvswitch_count,"
        " 'nvswitch_pci': preflight_nvswitch_pci_addresses} | to_json }}",
        "dest": "{{ playbook_dir }}/facts.json",
        "mode": "0600",
    },
}


def fake_pci(root: Path, devices: dict[str, tuple[str, str]]) -> Path:
    for address, (vendor, klass) in devices.items():
        dev = root / address
        dev.mkdir(parents=True)
        (dev / "vendor").write_text(vendor + "\n")
        (dev / "class").write_text(klass + "\n")
    return root


def run_with_report(tmp_path, role_vars):
    plays = role_play("preflight", {"preflight_enforce_resources": False, **role_vars})
    plays[0]["tasks"].append(REPORT)
    return run_playbook(tmp_path, plays)


def test_counts_only_nvidia_display_devices_and_finds_nvswitches(tmp_path):
    pci = fake_pci(
        tmp_path / "pci",
        {
            "0000:01:00.0": ("0x10de", "0x030200"),  # NVIDIA 3D controller (data-centre GPU)
            "0000:01:00.1": ("0x10de", "0x040300"),  # NVIDIA HDMI audio: not a GPU
            "0000:02:00.0": ("0x10de", "0x030000"),  # NVIDIA VGA controller
            "0000:03:00.0": ("0x1002", "0x030000"),  # AMD GPU: not NVIDIA
            "0000:00:1f.0": ("0x8086", "0x060100"),  # Intel ISA bridge
            # NVSwitch: NVIDIA, class "bridge, other" (what NVIDIA's nvswitch driver binds to)
            "0000:05:00.0": ("0x10de", "0x068000"),
            "0000:06:00.0": ("0x10de", "0x068000"),
            "0000:07:00.0": ("0x10b5", "0x068000"),  # PLX bridge-other: not an NVSwitch
            "0000:08:00.0": ("0x10de", "0x060400"),  # NVIDIA PCI-to-PCI bridge: not an NVSwitch
        },
    )
    run = run_with_report(tmp_path, {"preflight_pci_path": str(pci)})
    assert run.rc == 0, run.output
    facts = json.loads((tmp_path / "facts.json").read_text())
    assert facts == {
        "present": True,
        "count": 2,
        "pci": ["0000:01:00.0", "0000:02:00.0"],
        "nvswitch": True,
        "nvswitch_count": 2,
        "nvswitch_pci": ["0000:05:00.0", "0000:06:00.0"],
    }
    assert "2 NVIDIA GPU(s): 0000:01:00.0, 0000:02:00.0" in run.output
    assert "2 NVSwitch(es)" in run.output


def test_no_gpu_is_a_fact_not_a_failure(tmp_path):
    pci = fake_pci(tmp_path / "pci", {"0000:00:1f.0": ("0x8086", "0x060100")})
    run = run_with_report(tmp_path, {"preflight_pci_path": str(pci)})
    assert run.rc == 0, run.output
    facts = json.loads((tmp_path / "facts.json").read_text())
    assert (facts["count"], facts["nvswitch"], facts["nvswitch_count"]) == (0, False, 0)


def test_unsupported_os_fails_with_the_allowed_list(tmp_path):
    run = run_playbook(tmp_path, role_play("preflight", {"preflight_supported_os": ["Plan9-4"]}))
    assert run.rc != 0
    assert "is not supported (preflight_supported_os allows: Plan9-4)" in run.output


def test_too_little_memory_fails_and_names_the_variable(tmp_path):
    run = run_playbook(
        tmp_path,
        role_play("preflight", {"preflight_min_memory_mb": {"inference": 10**9}}),
        groups=("inference",),
    )
    assert run.rc != 0
    assert "MiB that groups inference need (preflight_min_memory_mb)" in run.output


def test_memory_is_read_from_the_host_with_only_the_min_facts(tmp_path):
    # site.yml gathers only the min subset (no hardware facts, no memtotal_mb): preflight reads
    # MemTotal itself, and still compares it.
    plays = role_play("preflight", {"preflight_min_memory_mb": {"inference": 10**9}})
    plays[0]["gather_subset"] = ["min"]
    run = run_playbook(tmp_path, plays, groups=("inference",))
    assert run.rc != 0
    expected = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]) // 1024
    assert f"Memory {expected} MiB is below the {10**9} MiB" in run.output


def test_resource_minimums_can_be_downgraded_to_a_warning(tmp_path):
    run = run_playbook(
        tmp_path,
        role_play(
            "preflight",
            {
                "preflight_min_disk_gb": {"observability": 10**9},
                "preflight_enforce_resources": False,
            },
        ),
    )
    assert run.rc == 0, run.output
    assert "preflight_min_disk_gb" in run.output
    assert "ignored=1" in run.output


@pytest.mark.parametrize(
    ("role", "bad_vars", "needle"),
    [
        ("preflight", {"preflight_enforce_resources": "maybe"}, "preflight_enforce_resources"),
        ("preflight", {"preflight_min_memory_mb": "lots"}, "preflight_min_memory_mb"),
        ("docker_engine", {"docker_engine_source": "snap"}, "docker_engine_source"),
        ("docker_engine", {"docker_engine_users": {"alice": 1}}, "docker_engine_users"),
        ("docker_engine", {"docker_engine_log_max_file": "many"}, "docker_engine_log_max_file"),
    ],
)
def test_bad_values_fail_in_argument_validation_naming_the_variable(
    tmp_path, role, bad_vars, needle
):
    # Check mode: should validation ever let a value through, nothing on this machine changes.
    run = run_playbook(tmp_path, role_play(role, bad_vars, gather_facts=False), check=True)
    assert run.rc != 0
    assert "Validating arguments against arg spec" in run.output
    assert needle in run.output.split("Validating arguments", 1)[1], run.output
