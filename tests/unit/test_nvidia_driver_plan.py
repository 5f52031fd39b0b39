"""nvidia_driver's decision (filter_plugins/nvidia_driver_plan.py) as plain Python: milliseconds.

The wiring (probes and variables into the filter, per OS) is proven by tests/test_nvidia_roles.py,
which runs tasks/plan.yml for every case; these tests pin every branch of the decision itself.
"""

from __future__ import annotations

import pytest

from tests.unit import load_plugin

plan_module = load_plugin("roles/nvidia_driver/filter_plugins/nvidia_driver_plan.py")
plan = plan_module.nvidia_driver_plan

NONE = "(none)"
KERNEL = "6.8.0-31-generic"
HEADERS = f"linux-headers-{KERNEL}"
ABI = f"linux-modules-nvidia-580-server-open-{KERNEL}"
META = "linux-modules-nvidia-580-server-open-generic"
PACKAGES = {
    "ubuntu": ["nvidia-headless-580-server-open", "nvidia-utils-580-server"],
    "ubuntu_precompiled": ["nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server"],
    "debian": ["nvidia-kernel-dkms", "nvidia-smi", "libcuda1", "firmware-nvidia-gsp"],
    "cuda_repo": ["nvidia-open"],
}
NO_SMI = {"answers": False, "driver_version": ""}


def policy(**rows: tuple[str, str]) -> str:
    return "".join(
        f"{name}:\n  Installed: {inst}\n  Candidate: {cand}\n  Version table:\n"
        for name, (inst, cand) in rows.items()
    )


def inputs(**over) -> dict:
    base = {
        "check_mode": False,
        "gpu": True,
        "nvswitch": False,
        "force": False,
        "secure_boot_check": True,
        "open_kernel_modules": True,
        "nvidia_smi": NO_SMI,
        "sb_state": "",
        "mok_test": "",
        "apt_policy": policy(**{HEADERS: (NONE, "6.8.0-31.31")}),
        "apt_lists": 3,
        "images": "ii linux-image-6.8.0-31-generic\nii linux-image-generic\n",
        "method": "ubuntu",
        "branch": "580",
        "kernel": KERNEL,
        "kernel_flavour": "generic",
        "headers_meta": False,
        "headers_running": HEADERS,
        "headers_flavour_meta": "linux-headers-generic",
        "precompiled_abi": ABI,
        "ubuntu_flavour": "580-server-open",
        "packages": PACKAGES,
        "pinning_package": "nvidia-driver-pinning-580",
        "mok_key": "/var/lib/shim-signed/mok/MOK.der",
        "fabricmanager": [["nvidia-fabricmanager-580"], ["libnvidia-nscq-580"]],
        "fm_branch": "580",
    }
    return {**base, **over}


def test_a_gpu_without_a_driver_installs_with_dkms_headers():
    got = plan(inputs())
    assert (got["action"], got["status"]) == ("install", "installing")
    assert got["install"] == [HEADERS, *PACKAGES["ubuntu"]]
    assert got["pin"] == []
    assert got["precompiled"] is False
    assert got["message"] == (
        "Installing the NVIDIA 580 driver (open kernel modules) via ubuntu: "
        f"{HEADERS}, nvidia-headless-580-server-open, nvidia-utils-580-server."
    )


def test_check_mode_says_would_install():
    got = plan(inputs(check_mode=True))
    assert got["status"] == "would-install"
    assert got["message"].startswith("Would install the NVIDIA 580 driver")


def test_a_working_driver_is_kept_with_its_version_and_a_note_on_another_branch():
    got = plan(inputs(nvidia_smi={"answers": True, "driver_version": "550.163.01"}))
    assert (got["action"], got["status"], got["version"]) == ("present", "present", "550.163.01")
    assert "keeping it, nothing installed, upgraded or downgraded" in got["message"]
    assert "(note: the pinned branch is 580;" in got["message"]
    same = plan(inputs(nvidia_smi={"answers": True, "driver_version": "580.95.05"}))
    assert "note" not in same["message"]


def test_a_working_driver_wins_even_without_a_gpu_seen_on_the_bus():
    got = plan(inputs(gpu=False, nvidia_smi={"answers": True, "driver_version": "580.95.05"}))
    assert got["action"] == "present"


def test_no_gpu_skips_and_force_installs():
    assert plan(inputs(gpu=False))["action"] == "skip"
    assert plan(inputs(gpu=False))["status"] == "skipped-no-gpu"
    assert "nvidia_driver_force: true" in plan(inputs(gpu=False))["message"]
    assert plan(inputs(gpu=False, force=True))["action"] == "install"


def test_strings_from_templates_count_as_booleans():
    assert plan(inputs(gpu="False"))["action"] == "skip"
    assert plan(inputs(gpu="False", force="True"))["action"] == "install"


def test_headers_gone_blocks_a_gpu_host_and_names_the_upgrade():
    got = plan(
        inputs(
            apt_policy=policy(dkms=(NONE, "3.2.2-1")),
            headers_meta=True,
            kernel="6.1.0-18-cloud-amd64",
            kernel_flavour="cloud-amd64",
            headers_running="linux-headers-6.1.0-18-cloud-amd64",
            headers_flavour_meta="linux-headers-cloud-amd64",
            method="cuda_repo",
        )
    )
    assert (got["action"], got["status"]) == ("blocked-headers", "blocked-kernel-headers")
    assert (
        "`apt-get update && apt-get install linux-image-cloud-amd64 linux-headers-cloud-amd64`"
        in got["message"]
    )


def test_headers_gone_on_ubuntu_names_the_installed_image_flavour():
    got = plan(inputs(apt_policy="", headers_flavour_meta=""))
    assert got["action"] == "blocked-headers"
    assert "apt-get install linux-image-generic` (or" in got["message"]


def test_no_package_lists_concludes_nothing_and_installs_with_the_flavour_meta():
    got = plan(
        inputs(
            apt_policy="",
            apt_lists=0,
            method="cuda_repo",
            headers_meta=True,
            headers_flavour_meta="linux-headers-cloud-arm64",
        )
    )
    assert got["action"] == "install"
    assert got["pin"] == ["nvidia-driver-pinning-580"]
    assert got["install"] == [HEADERS, "linux-headers-cloud-arm64", "nvidia-open"]
    assert (
        "(nvidia-driver-pinning-580 first, on its own, so apt keeps to branch 580)"
        in (got["message"])
    )


def test_the_flavour_meta_is_left_out_when_apt_has_no_candidate_for_it():
    got = plan(inputs(method="cuda_repo", headers_meta=True))
    assert got["install"] == [HEADERS, "nvidia-open"]


def test_secure_boot_without_an_enrolled_key_blocks_and_explains():
    got = plan(inputs(sb_state="SecureBoot enabled"))
    assert (got["action"], got["status"]) == ("blocked", "blocked-secure-boot")
    assert "mokutil --import /var/lib/shim-signed/mok/MOK.der" in got["message"]
    assert f"precompiled modules {ABI} for this kernel" in got["message"]
    enrolled = plan(inputs(sb_state="SecureBoot enabled", mok_test="MOK.der is already enrolled"))
    assert enrolled["action"] == "install"
    assert plan(inputs(sb_state="SecureBoot enabled", secure_boot_check=False))["action"] == (
        "install"
    )


def test_precompiled_modules_need_the_abi_and_the_flavour_meta_and_beat_secure_boot():
    both = policy(**{HEADERS: (NONE, "1"), ABI: (NONE, "1+1"), META: (NONE, "1+1")})
    got = plan(inputs(apt_policy=both, sb_state="SecureBoot enabled"))
    assert got["action"] == "install"
    assert got["precompiled"] is True
    assert got["install"] == [ABI, META, *PACKAGES["ubuntu_precompiled"]]
    assert "Canonical-signed precompiled, no DKMS" in got["message"]
    only_meta = policy(**{HEADERS: (NONE, "1"), META: (NONE, "1+1")})
    assert plan(inputs(apt_policy=only_meta))["precompiled"] is False
    assert plan(inputs(apt_policy=both, method="cuda_repo"))["precompiled"] is False


def test_ubuntu_virtual_image_counts_as_generic():
    assert plan_module.image_flavours("ii linux-image-virtual\nrc linux-image-old\n") == ["generic"]


def test_fabric_manager_only_on_nvswitch_hosts_that_install_or_keep_a_driver():
    assert plan(inputs())["fabricmanager"] == []
    got = plan(inputs(nvswitch=True))
    assert got["fabricmanager"] == [["nvidia-fabricmanager-580"], ["libnvidia-nscq-580"]]
    assert (
        "; NVSwitch host: Fabric Manager nvidia-fabricmanager-580, libnvidia-nscq-580, service"
        " nvidia-fabricmanager enabled and started." in got["message"]
    )
    kept = plan(
        inputs(
            nvswitch=True,
            nvidia_smi={"answers": True, "driver_version": "570.172.08"},
            fm_branch="570",
        )
    )
    assert "NVSwitch host: Fabric Manager 570 is installed and started" in kept["message"]
    assert plan(inputs(nvswitch=True, gpu=False))["fabricmanager"] == []


@pytest.mark.parametrize(("method", "modules"), [("debian", "proprietary"), ("cuda_repo", "open")])
def test_debian_packages_are_always_proprietary(method, modules):
    assert f"({modules} kernel modules)" in plan(inputs(method=method))["message"]
