"""preflight on this machine, for real: OS/arch/resource checks and GPU detection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.ansible_run import REPO, local_inventory, play, role_play, run_playbook

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


FAKE_SMI = """#!/bin/sh
echo asked >> "$SMI_LOG"
echo "580.95.05, GPU-00000000-aaaa-bbbb-cccc-dddddddddddd, NVIDIA L4"
"""


def test_nvidia_smi_is_asked_only_where_the_pci_bus_has_an_nvidia_gpu(tmp_path):
    # One run, two hosts: a fake PCI bus with an NVIDIA GPU and one without; nvidia-smi (a
    # stand-in first on PATH) logs each call per host.
    bus = {
        "gpu": fake_pci(tmp_path / "pci-gpu", {"0000:01:00.0": ("0x10de", "0x030200")}),
        "cpu": fake_pci(tmp_path / "pci-cpu", {"0000:00:1f.0": ("0x8086", "0x060100")}),
    }
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvidia-smi").write_text(FAKE_SMI)
    (tmp_path / "bin" / "nvidia-smi").chmod(0o755)
    plays = role_play("preflight", {"preflight_enforce_resources": False}, hosts="all")
    plays[0]["environment"] = {"SMI_LOG": f"{tmp_path}/{{{{ inventory_hostname }}}}.smi"}
    plays[0]["tasks"] += [
        {
            "name": "ask",
            "ansible.builtin.include_role": {"name": "preflight", "tasks_from": "nvidia_smi"},
        },
        {
            "name": "keep the answer",
            "ansible.builtin.copy": {
                "content": "{{ preflight_nvidia_smi | to_json }}",
                "dest": f"{tmp_path}/{{{{ inventory_hostname }}}}.json",
                "mode": "0600",
            },
        },
    ]
    inventory = local_inventory(
        {name: {"preflight_pci_path": str(path)} for name, path in bus.items()}
    )
    run = play(tmp_path, plays, inventory=inventory, path=[tmp_path / "bin"], report=False)
    assert run.rc == 0, run.output
    gpu = json.loads((tmp_path / "gpu.json").read_text())
    cpu = json.loads((tmp_path / "cpu.json").read_text())
    assert (tmp_path / "gpu.smi").read_text() == "asked\n"
    assert (gpu["answers"], gpu["driver_version"]) == (True, "580.95.05")
    assert not (tmp_path / "cpu.smi").exists(), "nvidia-smi was run on a host without an NVIDIA GPU"
    assert cpu["answers"] is False
    assert cpu["gpus"] == []
    assert "not asked: preflight found no NVIDIA GPU" in cpu["said"]


# The facts preflight sets (its set_fact in tasks/os_facts.yml), every one compared.
OS_FACTS = [
    key
    for key in yaml.safe_load((REPO / "roles/preflight/tasks/os_facts.yml").read_text())[0][
        "ansible.builtin.set_fact"
    ]
    if key != "cacheable"
]


def _keep_facts(name: str) -> dict:
    return {
        "name": f"keep the {name} facts",
        "ansible.builtin.copy": {
            # module_setup: a fact only the setup module sets (it tells which path ran)
            "content": "{{ dict(keys | zip(keys | map('extract', ansible_facts)))"
            " | combine({'by_setup': 'module_setup' in ansible_facts}) | to_json }}",
            "dest": f"{{{{ playbook_dir }}}}/{name}.json",
            "mode": "0600",
        },
        "vars": {"keys": OS_FACTS},
    }


def test_the_os_facts_preflight_reads_are_the_setup_modules(tmp_path):
    # The playbooks gather no facts: preflight's one raw read sets the ones the roles use. On this
    # machine (Debian 12; Molecule's verify does the same on Debian 13) they must be setup's.
    plays = role_play("preflight", tasks_from="facts", gather_facts=False)
    plays[0]["tasks"].append(_keep_facts("preflight"))
    plays.append(
        {
            "name": "gather with setup",
            "hosts": "localhost",
            "gather_facts": True,
            "gather_subset": ["min"],
            "tasks": [_keep_facts("setup")],
        }
    )
    run = run_playbook(tmp_path, plays)
    assert run.rc == 0, run.output
    read = json.loads((tmp_path / "preflight.json").read_text())
    setup = json.loads((tmp_path / "setup.json").read_text())
    # set by the raw read, not by the setup fallback; then setup's own
    assert (read.pop("by_setup"), setup.pop("by_setup")) == (False, True)
    assert read["distribution"] in ("Debian", "Ubuntu"), read
    assert read == setup


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


def test_a_system_the_read_does_not_know_gets_the_setup_modules_facts(tmp_path):
    # The raw read says "Fedora" (the OS part of preflight's script replaced): no fact is
    # derived from it, setup's min subset is gathered instead, and those are this machine's.
    plays = role_play(
        "preflight",
        {"__preflight_os_script": "echo 'value ID|fedora'; echo 'value VERSION_ID|41'"},
        tasks_from="facts",
        gather_facts=False,
    )
    plays[0]["tasks"].append(_keep_facts("fallback"))
    run = run_playbook(tmp_path, plays)
    assert run.rc == 0, run.output
    facts = json.loads((tmp_path / "fallback.json").read_text())
    assert facts["by_setup"] is True
    release = Path("/etc/os-release").read_text()
    assert facts["distribution"].lower() in release.lower(), facts
    assert facts["kernel"] == os.uname().release


def test_memory_is_read_from_the_host_without_gathered_facts(tmp_path):
    # site.yml gathers no facts (no memtotal_mb, no OS facts): preflight reads MemTotal and the
    # OS itself, and still compares both.
    plays = role_play(
        "preflight", {"preflight_min_memory_mb": {"inference": 10**9}}, gather_facts=False
    )
    run = run_playbook(tmp_path, plays, groups=("inference",))
    assert run.rc != 0
    expected = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]) // 1024
    assert f"Memory {expected} MiB is below the {10**9} MiB" in run.output
    assert "is not supported" not in run.output  # this Debian, as preflight read it, passed


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
