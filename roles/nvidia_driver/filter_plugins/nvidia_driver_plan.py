"""nvidia_driver's decision: what a host needs, from what the probes read and the settings.

Plain Python so every branch of the decision is unit-tested in milliseconds
(tests/unit/test_nvidia_driver_plan.py); the role calls it once, as the filter
`nvidia_driver_plan`, in tasks/plan.yml. It reads the host through its inputs only (the probes'
answers), so it decides the same in check mode and in a real run.

Inputs (one mapping, built in vars/main.yml as __nvidia_driver_plan_inputs):
  check_mode, gpu, nvswitch, force, secure_boot_check, open_kernel_modules   booleans
  nvidia_smi        preflight_nvidia_smi (answers, driver_version)
  sb_state          `mokutil --sb-state` output ('' when not asked)
  mok_test          `mokutil --test-key <key>` output ('' when not asked)
  apt_policy        `apt-cache policy <names>` output
  apt_lists         how many package lists apt has (0: it cannot tell what the archive has)
  images            `dpkg-query` lines of the installed linux-image-* packages
  method, branch    the resolved method and branch (tasks/resolve.yml)
  kernel, kernel_flavour, headers_meta, headers_running, headers_flavour_meta,
  precompiled_abi, ubuntu_flavour, packages, pinning_package, mok_key,
  fabricmanager, fm_branch   names from vars/main.yml and vars/<OS>.yml
Output: action (present, skip, blocked, blocked-headers, install), status (nvidia_driver_status),
message, version, precompiled, pin and install (packages), fabricmanager (names to try), fm_branch.
"""

from __future__ import annotations

import re
from typing import Any

# `apt-cache policy` prints, per package: "<name>:\n  Installed: <v>\n  Candidate: <v>".
_POLICY_ROW = re.compile(r"(?m)^(\S+):\n\s+Installed: (\S+)\n\s+Candidate: (\S+)")
# dpkg-query "${db:Status-Abbrev}${Package}" lines of installed kernel images.
_IMAGE_ROW = re.compile(r"(?m)^ii\s+linux-image-([a-z][a-z0-9.+-]*)$")
NONE = "(none)"

STATUSES = {
    "present": "present",
    "skip": "skipped-no-gpu",
    "blocked": "blocked-secure-boot",
    "blocked-headers": "blocked-kernel-headers",
}


def apt_policy_rows(text: str) -> list[tuple[str, str, str]]:
    """(name, installed, candidate) per package `apt-cache policy` answered for; also the filter
    `nvidia_driver_apt_policy_rows`, which install.yml's checks and fabricmanager.yml read."""
    return _POLICY_ROW.findall(text or "")


def image_flavours(text: str) -> list[str]:
    """Flavours of the installed kernel image meta packages ("virtual" is Ubuntu's "generic")."""
    return ["generic" if f == "virtual" else f for f in _IMAGE_ROW.findall(text or "")]


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def nvidia_driver_plan(inputs: dict[str, Any]) -> dict[str, Any]:
    """Decide what the host needs; see the module docstring for inputs and output."""
    rows = apt_policy_rows(inputs.get("apt_policy", ""))
    installed = {name: inst for name, inst, _cand in rows}
    candidate = {name: cand for name, _inst, cand in rows}
    lists_present = int(inputs.get("apt_lists") or 0) > 0
    flavours = image_flavours(inputs.get("images", ""))
    method = inputs["method"]

    def known(name: str) -> bool:
        return candidate.get(name, NONE) != NONE or installed.get(name, NONE) != NONE

    # Ubuntu: Canonical-signed modules for exactly this kernel, plus the meta package of the
    # installed kernel flavour so the next kernel gets them too; without both, DKMS (the fallback).
    available = [name for name, cand in candidate.items() if cand != NONE]
    modules_meta = next(
        (
            meta
            for meta in (f"linux-modules-nvidia-{inputs['ubuntu_flavour']}-{f}" for f in flavours)
            if meta in available
        ),
        "",
    )
    precompiled = method == "ubuntu" and known(inputs["precompiled_abi"]) and bool(modules_meta)
    # apt-cache policy prints nothing for a name no list mentions; with no lists at all (a fresh
    # image) nothing can be concluded, and install.yml checks again after its apt update.
    headers_gone = lists_present and not known(inputs["headers_running"])

    gpu = _bool(inputs.get("gpu"))
    smi = inputs.get("nvidia_smi") or {}
    working = _bool(smi.get("answers", False))
    version_now = str(smi.get("driver_version") or "")
    sb_blocks = (
        _bool(inputs.get("secure_boot_check"))
        and gpu
        and "SecureBoot enabled" in (inputs.get("sb_state") or "")
        and "is already enrolled" not in (inputs.get("mok_test") or "")
    )
    if working:
        action = "present"
    elif not (gpu or _bool(inputs.get("force"))):
        action = "skip"
    elif gpu and not precompiled and headers_gone:
        action = "blocked-headers"
    elif sb_blocks and not precompiled:
        action = "blocked"
    else:
        action = "install"

    packages = inputs["packages"]
    pin = [inputs["pinning_package"]] if method == "cuda_repo" else []
    flavour_meta = inputs.get("headers_flavour_meta") or ""
    if precompiled:
        install = [inputs["precompiled_abi"], modules_meta, *packages["ubuntu_precompiled"]]
    else:
        meta = (
            [flavour_meta]
            if _bool(inputs.get("headers_meta"))
            and flavour_meta
            and (candidate.get(flavour_meta, NONE) != NONE or not lists_present)
            else []
        )
        install = [inputs["headers_running"], *meta, *packages[method]]
    # Fabric Manager must match the driver's branch: the one being installed, or the working one.
    fabricmanager = (
        list(inputs.get("fabricmanager") or [])
        if _bool(inputs.get("nvswitch")) and action in ("install", "present")
        else []
    )
    plan = {
        "action": action,
        "status": STATUSES.get(action)
        or ("would-install" if _bool(inputs.get("check_mode")) else "installing"),
        "version": version_now if working else "",
        "precompiled": precompiled,
        "pin": pin,
        "install": install,
        "fabricmanager": fabricmanager,
        "fm_branch": str(inputs.get("fm_branch") or ""),
    }
    plan["message"] = _message(plan, inputs, flavours)
    return plan


def _message(plan: dict[str, Any], inputs: dict[str, Any], flavours: list[str]) -> str:
    """The sentence the role prints for its decision."""
    action, method, branch = plan["action"], inputs["method"], str(inputs["branch"])
    fabricmanager = plan["fabricmanager"]
    if action == "present":
        version = plan["version"]
        note = (
            ""
            if version.startswith(branch + ".")
            else f" (note: the pinned branch is {branch}; change it by hand if you mean to)"
        )
        fm = (
            f" NVSwitch host: Fabric Manager {plan['fm_branch']} is installed and started to"
            " match it."
            if fabricmanager
            else ""
        )
        return (
            f"NVIDIA driver {version} already works (nvidia-smi answers): keeping it, nothing"
            f" installed, upgraded or downgraded{note}.{fm}"
        )
    if action == "skip":
        return (
            "No NVIDIA GPU on this host (preflight_gpu_present is false): the NVIDIA driver is not"
            " installed. Set nvidia_driver_force: true to install it anyway (image building)."
        )
    if action == "blocked":
        key = inputs["mok_key"]
        ubuntu = (
            f" (Ubuntu has no Canonical-signed precompiled modules {inputs['precompiled_abi']}"
            " for this kernel, which would load without a key.)"
            if method == "ubuntu"
            else ""
        )
        return (
            f"Secure Boot is enabled and no enrolled key signs DKMS modules ({key}), so an NVIDIA"
            " module built here would not load. Nothing was installed. Either enroll the DKMS key"
            f" (install dkms, build once or create the key, then `mokutil --import {key}`, reboot"
            " and confirm in the MOK manager at the console), or disable Secure Boot in the"
            " firmware, then run again. Set nvidia_driver_secure_boot_check: false if your modules"
            f" are signed another way.{ubuntu}"
        )
    if action == "blocked-headers":
        kernel_flavour = inputs.get("kernel_flavour") or ""
        image_meta = (
            f"linux-image-{kernel_flavour}"
            if _bool(inputs.get("headers_meta")) and kernel_flavour
            else f"linux-image-{flavours[0] if flavours else 'generic'}"
        )
        upgrade = " ".join(filter(None, [image_meta, inputs.get("headers_flavour_meta") or ""]))
        return (
            f"KERNEL HEADERS GONE: the running kernel {inputs['kernel']} has no headers in the"
            f" archive any more ({inputs['headers_running']} is neither installed nor installable;"
            " the archive has moved on to a newer kernel), so DKMS cannot build the NVIDIA module"
            " for it. Nothing was installed. Upgrade the kernel and boot it: `apt-get update &&"
            f" apt-get install {upgrade}` (or `apt-get full-upgrade`), reboot, then run again."
        )
    modules = (
        "open" if _bool(inputs.get("open_kernel_modules")) and method != "debian" else "proprietary"
    )
    precompiled = ", Canonical-signed precompiled, no DKMS" if plan["precompiled"] else ""
    pin = plan["pin"]
    first = f" ({', '.join(pin)} first, on its own, so apt keeps to branch {branch})" if pin else ""
    fm = (
        "; NVSwitch host: Fabric Manager "
        + ", ".join(names[0] for names in fabricmanager)
        + ", service nvidia-fabricmanager enabled and started"
        if fabricmanager
        else ""
    )
    verb = "Would install" if _bool(inputs.get("check_mode")) else "Installing"
    return (
        f"{verb} the NVIDIA {branch} driver ({modules} kernel modules{precompiled}) via {method}:"
        f" {', '.join(pin + plan['install'])}{first}{fm}."
    )


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "nvidia_driver_plan": nvidia_driver_plan,
            "nvidia_driver_image_flavours": image_flavours,
            "nvidia_driver_apt_policy_rows": apt_policy_rows,
        }
