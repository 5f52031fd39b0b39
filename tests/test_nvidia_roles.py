"""nvidia_driver and nvidia_container_toolkit without a GPU: real ansible-playbook runs.

No GPU, no NVIDIA repository and no reboot are possible here, so these runs exercise what can
be decided without them, for real: argument specs, the decision (plan) tasks with preset probe
results per OS, the reboot guard, the toolkit's decision, and the whole no-GPU path on this
machine. Each case is one inventory host (all reached over the local connection), so one
ansible-playbook run covers the matrix; every case writes its outcome to a JSON file.
What only a GPU host can prove is in molecule/gpu (see the roles' READMEs).
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.ansible_run import PlaybookRun, play

pytestmark = pytest.mark.roles

REPO = Path(__file__).resolve().parents[1]
NO_SMI = {"rc": 2, "stdout": "", "msg": "[Errno 2] No such file or directory: b'nvidia-smi'"}


def smi_answers(version: str) -> dict:
    """A registered nvidia-smi result (preflight's nvidia_smi query) for one working GPU."""
    return {"rc": 0, "stdout": f"{version}, GPU-00000000-aaaa-bbbb-cccc-dddddddddddd, NVIDIA L4"}


def policy(**packages: tuple[str, str]) -> str:
    """`apt-cache policy` output for packages given as name=(installed, candidate)."""
    return "".join(
        f"{name}:\n  Installed: {inst}\n  Candidate: {cand}\n  Version table:\n"
        for name, (inst, cand) in packages.items()
    )


NONE = "(none)"
# What apt says on a host whose running kernel's headers are still in the archive.
UBUNTU_APT = policy(**{"linux-headers-6.8.0-31-generic": (NONE, "6.8.0-31.31")})
UBUNTU_IMAGES = "ii linux-image-6.8.0-31-generic\nii linux-image-generic\n"
# Canonical's precompiled 580-server-open modules for the running kernel and its flavour.
UBUNTU_PRECOMPILED_APT = UBUNTU_APT + policy(
    **{
        "linux-modules-nvidia-580-server-open-6.8.0-31-generic": (NONE, "6.8.0-31.31+1"),
        "linux-modules-nvidia-580-server-open-generic": (NONE, "6.8.0-31.31+1"),
    }
)


def debian_apt(kernel: str, flavour: str, *, running_headers: bool = True) -> str:
    rows = {f"linux-headers-{flavour}": (NONE, "6.1.192-2")}
    if running_headers:
        rows[f"linux-headers-{kernel}"] = (NONE, "6.1.76-1")
    return policy(**rows, dkms=(NONE, "3.2.2-1"))


# Decision cases: inputs (probe results and variables), run through nvidia_driver's plan.yml.
PLAN_CASES = {
    "ubuntu24_default": {"os": "Ubuntu-24", "gpu": True, "smi": NO_SMI, "images": UBUNTU_IMAGES},
    "ubuntu22_proprietary_550": {
        "os": "Ubuntu-22",
        "gpu": True,
        "smi": NO_SMI,
        "vars": {"nvidia_driver_branch": "550", "nvidia_driver_open_kernel_modules": False},
    },
    # A cloud kernel: its header meta package is linux-headers-cloud-amd64, not -amd64.
    "debian12_default": {
        "os": "Debian-12",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.1.0-18-cloud-amd64",
        "apt": debian_apt("6.1.0-18-cloud-amd64", "cloud-amd64"),
    },
    "debian12_debian_packages": {
        "os": "Debian-12",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.1.0-18-amd64",
        "apt": debian_apt("6.1.0-18-amd64", "amd64"),
        "vars": {"nvidia_driver_method": "debian"},
    },
    "debian13_cuda_repo": {
        "os": "Debian-13",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.12.38+deb13-amd64",
        "apt": debian_apt("6.12.38+deb13-amd64", "amd64"),
        "vars": {"nvidia_driver_method": "cuda_repo"},
    },
    "debian13_cuda_repo_proprietary": {
        "os": "Debian-13",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.12.38+deb13-rt-amd64",
        "apt": debian_apt("6.12.38+deb13-rt-amd64", "rt-amd64"),
        "vars": {"nvidia_driver_method": "cuda_repo", "nvidia_driver_open_kernel_modules": False},
    },
    # The running ABI has left the archive: stop before installing, say upgrade + reboot.
    "debian12_headers_gone": {
        "os": "Debian-12",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.1.0-18-cloud-amd64",
        "apt": debian_apt("6.1.0-18-cloud-amd64", "cloud-amd64", running_headers=False),
    },
    # No package lists yet (fresh image): nothing to conclude, install (install.yml checks again).
    "debian13_no_lists": {
        "os": "Debian-13",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.12.38+deb13-cloud-arm64",
        "apt": "",
        "lists": 0,
    },
    # Ubuntu with Canonical-signed precompiled modules for the running kernel: no DKMS, and
    # Secure Boot without an enrolled key does not block (the modules are signed).
    "ubuntu24_precompiled_secure_boot": {
        "os": "Ubuntu-24",
        "gpu": True,
        "smi": NO_SMI,
        "apt": UBUNTU_PRECOMPILED_APT,
        "images": UBUNTU_IMAGES,
        "sb": {"rc": 0, "stdout": "SecureBoot enabled"},
    },
    "ubuntu22_hwe_precompiled_proprietary": {
        "os": "Ubuntu-22",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.8.0-40-generic",
        "images": "ii linux-image-6.8.0-40-generic\nii linux-image-generic-hwe-22.04\n",
        "apt": policy(
            **{
                "linux-headers-6.8.0-40-generic": (NONE, "6.8.0-40.40~22.04.3"),
                "linux-modules-nvidia-580-server-6.8.0-40-generic": (NONE, "6.8.0-40.40~22.04.3+1"),
                "linux-modules-nvidia-580-server-generic-hwe-22.04": (
                    NONE,
                    "6.8.0-40.40~22.04.3+1",
                ),
            }
        ),
        "vars": {"nvidia_driver_open_kernel_modules": False},
    },
    # Precompiled modules exist for the flavour but not for this (older) kernel: DKMS.
    "ubuntu24_precompiled_not_for_this_kernel": {
        "os": "Ubuntu-24",
        "gpu": True,
        "smi": NO_SMI,
        "images": UBUNTU_IMAGES,
        "apt": UBUNTU_APT
        + policy(**{"linux-modules-nvidia-580-server-open-generic": (NONE, "6.8.0-50.50+1")}),
    },
    # NVSwitch (HGX/DGX): Fabric Manager and NSCQ of the driver's branch.
    "debian13_nvswitch": {
        "os": "Debian-13",
        "gpu": True,
        "nvswitch": True,
        "smi": NO_SMI,
        "kernel": "6.12.38+deb13-amd64",
        "apt": debian_apt("6.12.38+deb13-amd64", "amd64"),
    },
    "ubuntu24_nvswitch": {
        "os": "Ubuntu-24",
        "gpu": True,
        "nvswitch": True,
        "smi": NO_SMI,
        "images": UBUNTU_IMAGES,
    },
    "nvswitch_working_driver": {
        "os": "Ubuntu-22",
        "gpu": True,
        "nvswitch": True,
        "smi": smi_answers("570.172.08"),
    },
    "nvswitch_debian_method": {
        "os": "Debian-12",
        "gpu": True,
        "nvswitch": True,
        "smi": NO_SMI,
        "vars": {"nvidia_driver_method": "debian"},
    },
    "no_gpu": {"os": "Debian-13", "gpu": False, "smi": NO_SMI},
    "no_gpu_forced": {
        "os": "Debian-13",
        "gpu": False,
        "smi": NO_SMI,
        "vars": {"nvidia_driver_force": True},
    },
    "working_driver_older_branch": {
        "os": "Ubuntu-24",
        "gpu": True,
        "smi": smi_answers("550.163.01"),
    },
    "secure_boot_no_key": {
        "os": "Ubuntu-24",
        "gpu": True,
        "smi": NO_SMI,
        "images": UBUNTU_IMAGES,
        "sb": {"rc": 0, "stdout": "SecureBoot enabled"},
    },
    "secure_boot_key_enrolled": {
        "os": "Debian-12",
        "gpu": True,
        "smi": NO_SMI,
        "kernel": "6.1.0-18-amd64",
        "apt": debian_apt("6.1.0-18-amd64", "amd64"),
        "sb": {"rc": 0, "stdout": "SecureBoot enabled"},
        "mok": {"rc": 0, "stdout": "/var/lib/dkms/mok.pub is already enrolled"},
    },
    "secure_boot_check_off": {
        "os": "Ubuntu-24",
        "gpu": True,
        "smi": NO_SMI,
        "sb": {"rc": 0, "stdout": "SecureBoot enabled"},
        "vars": {"nvidia_driver_secure_boot_check": False},
    },
    "debian_with_foreign_branch": {
        "os": "Debian-13",
        "gpu": True,
        "smi": NO_SMI,
        "vars": {"nvidia_driver_method": "debian", "nvidia_driver_branch": "580"},
    },
    "debian_method_on_ubuntu": {
        "os": "Ubuntu-22",
        "gpu": True,
        "smi": NO_SMI,
        "vars": {"nvidia_driver_method": "debian"},
    },
}

INSTALL_CHECK_VARS = {
    "__nvidia_driver_method_resolved": "{{ check.method }}",
    "__nvidia_driver_branch_resolved": "{{ check.branch }}",
    "__nvidia_driver_kernel": "6.1.0-40-amd64",
    "__nvidia_driver_plan": {"pin": ["nvidia-driver-pinning-580"], "install": ["nvidia-open"]},
    "__nvidia_driver_policy_now": {"stdout": "{{ check.apt | default('') }}"},
    "__nvidia_driver_modinfo": {"stdout": "{{ check.modinfo | default('') }}"},
    "preflight_gpu_present": True,
}
HEADERS_40 = {"linux-headers-6.1.0-40-amd64": (NONE, "6.1.170-1")}
# What apt answers after its update, and what modinfo reports after the install.
INSTALL_CHECKS = {
    "ic_bookworm_dkms": (
        "check_before_install",
        {
            "method": "cuda_repo",
            "branch": "580",
            "apt": policy(**HEADERS_40, dkms=(NONE, "3.0.10-8+deb12u1")),
        },
    ),
    "ic_nvidia_dkms": (
        "check_before_install",
        {
            "method": "cuda_repo",
            "branch": "580",
            "apt": policy(**HEADERS_40, dkms=(NONE, "1:3.2.2-1")),
        },
    ),
    "ic_debian_method_old_dkms": (
        "check_before_install",
        {
            "method": "debian",
            "branch": "535",
            "apt": policy(**HEADERS_40, dkms=(NONE, "3.0.10-8+deb12u1")),
        },
    ),
    "ic_headers_gone": (
        "check_before_install",
        {"method": "cuda_repo", "branch": "580", "apt": policy(dkms=(NONE, "3.2.2-1"))},
    ),
    "ic_branch_ok": (
        "check_branch",
        {"method": "cuda_repo", "branch": "580", "modinfo": "580.95.05"},
    ),
    "ic_branch_newer": (
        "check_branch",
        {"method": "cuda_repo", "branch": "580", "modinfo": "590.48.01"},
    ),
    "ic_branch_missing": ("check_branch", {"method": "cuda_repo", "branch": "580", "modinfo": ""}),
}

# Bad inventory values: the argument spec must stop the role and name the variable.
SPEC_CASES = {
    "bad_method": ("nvidia_driver", "main", {"nvidia_driver_method": "runfile"}),
    "bad_reboot_ok": ("nvidia_driver", "main", {"nvidia_driver_reboot_ok": "sometimes"}),
    "bad_timeout": ("nvidia_driver", "main", {"nvidia_driver_reboot_timeout": "soon"}),
    "bad_default_runtime": (
        "nvidia_container_toolkit",
        "main",
        {"nvidia_container_toolkit_default_runtime": "perhaps"},
    ),
    "bad_verify_mode": (
        "nvidia_container_toolkit",
        "verify",
        {"nvidia_container_toolkit_verify_mode": "nvidia-docker"},
    ),
    # Good values pass (also keeps the play alive: a play whose hosts all fail ends the run).
    "good_values": (
        "nvidia_container_toolkit",
        "verify",
        {"nvidia_container_toolkit_verify_mode": "cdi"},
    ),
}

# The toolkit's decision from the driver's status.
TOOLKIT_CASES = {
    "tk_driver_present": {"nvidia_driver_status": "present"},
    "tk_driver_installed": {"nvidia_driver_status": "installed"},
    "tk_reboot_pending": {"nvidia_driver_status": "reboot-required"},
    "tk_secure_boot": {"nvidia_driver_status": "blocked-secure-boot"},
    "tk_no_gpu": {"nvidia_driver_status": "skipped-no-gpu"},
    "tk_no_gpu_forced": {
        "nvidia_driver_status": "skipped-no-gpu",
        "nvidia_container_toolkit_force": True,
    },
    "tk_no_driver_role_gpu": {"preflight_gpu_present": True},
}


def report(names: str) -> dict:
    """Keep a case's outcome as a fact; the last play writes all of them in one file."""
    return {
        "name": "Keep the outcome",
        "ansible.builtin.set_fact": {"test_outcome": "{{ " + names + " }}"},
    }


def rescued(*tasks: dict) -> dict:
    """Run tasks; the outcome is whether they failed and the message (the host stays in the run)."""
    return {
        "name": "Run and keep the outcome",
        "block": [*tasks, report("{'failed': false}")],
        "rescue": [report("{'failed': true, 'msg': ansible_failed_result.msg | default('')}")],
    }


COLLECT = {
    "name": "collect every case's outcome",
    "hosts": "localhost",
    "gather_facts": False,
    "tasks": [
        {
            "name": "Write the outcomes",
            "ansible.builtin.copy": {
                "content": "{{ groups['all'] | map('extract', hostvars)"
                " | selectattr('test_outcome', 'defined')"
                " | items2dict(key_name='inventory_hostname', value_name='test_outcome')"
                " | to_json }}",
                "dest": "{{ report_file }}",
                "mode": "0600",
            },
            "check_mode": False,
        }
    ],
}


def include(role: str, tasks_from: str, role_vars: dict) -> dict:
    return {
        "name": f"Run {role} {tasks_from}",
        "ansible.builtin.include_role": {"name": role, "tasks_from": tasks_from},
        "vars": role_vars,
    }


def plays() -> list[dict]:
    plan_vars = {
        "__nvidia_driver_os": "{{ case.os }}",
        "__nvidia_driver_kernel": "{{ case.kernel | default('6.8.0-31-generic') }}",
        "__nvidia_driver_arch": "x86_64",
        "preflight_nvidia_smi": "{{ case.smi | glassbox_nvidia_smi }}",
        "__nvidia_driver_sb": "{{ case.sb | default({'rc': 2, 'stdout': ''}) }}",
        "__nvidia_driver_mok": "{{ case.mok | default({'rc': 1, 'stdout': ''}) }}",
        "__nvidia_driver_apt_policy": {"stdout": "{{ case.apt | default(default_apt) }}"},
        "__nvidia_driver_apt_lists": {"matched": "{{ case.lists | default(3) }}"},
        "__nvidia_driver_images": {"stdout": "{{ case.images | default('') }}"},
        "preflight_gpu_present": "{{ case.gpu }}",
        "preflight_nvswitch_present": "{{ case.nvswitch | default(false) }}",
    }
    return [
        {
            "name": "nvidia_driver decisions",
            "hosts": "plan",
            "gather_facts": False,
            "tasks": [
                include("nvidia_driver", "resolve", plan_vars),
                include("nvidia_driver", "plan", plan_vars),
                report(
                    "{'status': nvidia_driver_status, 'action': __nvidia_driver_plan.action,"
                    " 'method': __nvidia_driver_method_resolved,"
                    " 'branch': __nvidia_driver_branch_resolved,"
                    " 'packages': __nvidia_driver_plan.install,"
                    # default(): a role without these facts still reports, so each test
                    # names what is missing instead of the whole run failing
                    " 'pin': __nvidia_driver_plan.pin | default('undefined'),"
                    " 'precompiled': __nvidia_driver_plan.precompiled | default('undefined'),"
                    " 'fabricmanager': __nvidia_driver_plan.fabricmanager | default('undefined'),"
                    " 'key_file': __nvidia_driver_cuda_repo_key_file | default('undefined'),"
                    " 'key_fingerprint': __nvidia_driver_cuda_repo_key_fingerprint_expected"
                    " | default('undefined'),"
                    " 'version': nvidia_driver_version, 'message': __nvidia_driver_plan.message}"
                ),
            ],
        },
        {
            "name": "CUDA repository key check (fetch from a file URL, no apt)",
            "hosts": "cudakey",
            "gather_facts": False,
            "tasks": [
                rescued(
                    include(
                        "nvidia_driver",
                        "resolve",
                        {"__nvidia_driver_os": "{{ key_os }}", "__nvidia_driver_arch": "x86_64"},
                    ),
                    include(
                        "nvidia_driver",
                        "cuda_key",
                        {
                            "__nvidia_driver_os": "{{ key_os }}",
                            "__nvidia_driver_arch": "x86_64",
                            "__nvidia_driver_cuda_repo_url": "{{ key_dir_url }}",
                            "__nvidia_driver_cuda_keyring": "{{ key_keyring }}",
                        },
                    ),
                )
            ],
        },
        {
            "name": "toolkit repository key check (fetch from a file URL, no apt)",
            "hosts": "tkkey",
            "gather_facts": False,
            "tasks": [
                rescued(
                    include(
                        "nvidia_container_toolkit",
                        "key",
                        {"__nvidia_container_toolkit_keyring": "{{ key_keyring }}"},
                    )
                )
            ],
        },
        {
            "name": "checks around the install (apt's answer, the installed module's version)",
            "hosts": "installcheck",
            "gather_facts": False,
            "tasks": [
                rescued(
                    # one include per file: include_role does not vary tasks_from per host
                    *(
                        {
                            **include("nvidia_driver", name, INSTALL_CHECK_VARS),
                            "when": f"check_file == '{name}'",
                        }
                        for name in ("check_before_install", "check_branch")
                    )
                )
            ],
        },
        {
            "name": "argument specs",
            "hosts": "spec",
            "gather_facts": False,
            "tasks": [
                # One include per role and entry point: a templated role name or tasks_from is
                # not resolved per host reliably, and a case must meet its own role's spec.
                *(
                    {
                        **include(role, entry, {}),
                        "when": f"spec_role == '{role}' and spec_entry == '{entry}'",
                    }
                    for role, entry in sorted({(r, e) for r, e, _v in SPEC_CASES.values()})
                ),
                report("{'passed_validation': true}"),
            ],
        },
        {
            "name": "reboot guard",
            "hosts": "reboot",
            "gather_facts": False,
            "tasks": [
                include("nvidia_driver", "reboot", {}),
                report(
                    "{'status': nvidia_driver_status, 'required': nvidia_driver_reboot_required,"
                    " 'blocker': __nvidia_driver_reboot_blocker}"
                ),
            ],
        },
        {
            "name": "toolkit decisions",
            "hosts": "toolkit",
            "gather_facts": False,
            "tasks": [
                include("nvidia_container_toolkit", "plan", {}),
                report(
                    "{'status': nvidia_container_toolkit_status,"
                    " 'install': __nvidia_container_toolkit_install,"
                    " 'message': __nvidia_container_toolkit_message}"
                ),
            ],
        },
        {
            "name": "the whole no-GPU path on this machine",
            "hosts": "nogpu",
            "gather_facts": True,
            "gather_subset": ["min"],
            "tasks": [
                include("nvidia_driver", "main", {}),
                include("nvidia_container_toolkit", "main", {}),
                include("nvidia_container_toolkit", "verify", {}),
                report(
                    "{'driver': nvidia_driver_status, 'toolkit': nvidia_container_toolkit_status,"
                    " 'runtimes': docker_engine_registered_runtimes | default({}),"
                    " 'default_runtime': docker_engine_default_runtime | default('')}"
                ),
            ],
        },
        {
            "name": "toolkit decisions in check mode",
            "hosts": "toolkit_check",
            "gather_facts": False,
            "check_mode": True,
            "tasks": [
                include("nvidia_container_toolkit", "plan", {}),
                report("{'status': nvidia_container_toolkit_status}"),
            ],
        },
        {
            "name": "the forced install path in check mode on this machine",
            "hosts": "forced",
            "gather_facts": True,
            "gather_subset": ["min"],
            # Only ever run with --check (see run()); this keeps every module in check mode too.
            "check_mode": True,
            "tasks": [
                include("nvidia_driver", "main", {}),
                include("nvidia_container_toolkit", "main", {}),
                report(
                    "{'driver': nvidia_driver_status, 'toolkit': nvidia_container_toolkit_status,"
                    " 'packages': __nvidia_driver_plan.install,"
                    " 'runtimes': docker_engine_registered_runtimes | default({}),"
                    " 'default_runtime': docker_engine_default_runtime | default('')}"
                ),
            ],
        },
        COLLECT,
    ]


def inventory(report_file: Path, key: dict) -> dict:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    keydir = report_file.parent / "keys"
    groups: dict[str, dict] = {
        "plan": {name: {"case": case, **case.get("vars", {})} for name, case in PLAN_CASES.items()},
        "spec": {
            name: {"spec_role": role, "spec_entry": entry, **values}
            for name, (role, entry, values) in SPEC_CASES.items()
        },
        "reboot": {
            # Reboot allowed, but the host is the machine Ansible runs on: must not reboot.
            "reboot_local_allowed": {"nvidia_driver_reboot_ok": True},
            # Reboot not allowed; the connection is not local (no task of the file connects then).
            "reboot_not_allowed": {"nvidia_driver_reboot_ok": False, "ansible_connection": "ssh"},
        },
        "toolkit": dict(TOOLKIT_CASES),
        "installcheck": {
            name: {"check_file": file, "check": check}
            for name, (file, check) in INSTALL_CHECKS.items()
        },
        # A throwaway key stands in for NVIDIA's: the OS's own fingerprint must reject it (nothing
        # written), and the same key passes when its own fingerprint is the expected one.
        "cudakey": {
            "cudakey_debian13_rejects": {
                "key_os": "Debian-13",
                "key_keyring": str(keydir / "d13.asc"),
            },
            "cudakey_debian12_rejects": {
                "key_os": "Debian-12",
                "key_keyring": str(keydir / "d12.asc"),
            },
            "cudakey_pinned_accepts": {
                "key_os": "Debian-13",
                "key_keyring": str(keydir / "ok.asc"),
                "nvidia_driver_cuda_repo_key_fingerprint": key["fingerprint"],
            },
        },
        "tkkey": {
            "tkkey_default_rejects": {"key_keyring": str(keydir / "tk-bad.asc")},
            "tkkey_pinned_accepts": {
                "key_keyring": str(keydir / "tk-ok.asc"),
                "nvidia_container_toolkit_repo_key_fingerprint": key["fingerprint"].lower(),
            },
            # The keyring already holds the pinned key: nothing is fetched (the URL is missing,
            # so a fetch would fail the host).
            "tkkey_installed_skips": {
                "key_keyring": str(keydir / "tk-installed.asc"),
                "nvidia_container_toolkit_repo_key_fingerprint": key["fingerprint"],
                "nvidia_container_toolkit_repo_key_url": (keydir / "missing.pub").as_uri(),
            },
            # A keyring with another content, or the right key with another mode, is replaced.
            "tkkey_installed_wrong_replaced": {
                "key_keyring": str(keydir / "tk-wrong.asc"),
                "nvidia_container_toolkit_repo_key_fingerprint": key["fingerprint"],
            },
            "tkkey_installed_mode_fixed": {
                "key_keyring": str(keydir / "tk-mode.asc"),
                "nvidia_container_toolkit_repo_key_fingerprint": key["fingerprint"],
            },
        },
        "nogpu": {"nogpu_here": {"preflight_gpu_present": False}},
        # Check mode with both force switches: the install path without network or change.
        # NVIDIA's key URL points at a local file (get_url asks for it even in check mode).
        "toolkit_check": {
            # --check on a fresh GPU host: the driver would be installed, the toolkit too.
            "tkc_gpu_driver_would_install": {
                "preflight_gpu_present": True,
                "nvidia_driver_status": "would-install",
            },
            "tkc_no_gpu": {"nvidia_driver_status": "skipped-no-gpu"},
        },
        "forced": {
            "forced_check": {
                "preflight_gpu_present": False,
                "nvidia_driver_force": True,
                "nvidia_driver_method": "debian",
                "nvidia_container_toolkit_force": True,
                "nvidia_container_toolkit_default_runtime": True,
                "nvidia_container_toolkit_repo_key_url": (report_file.parent / "fake.key").as_uri(),
            }
        },
    }
    hosts = {}
    for members in groups.values():
        for name, host_vars in members.items():
            hosts[name] = {**local, **host_vars}
    hosts["localhost"] = dict(local)
    return {
        "all": {
            "vars": {
                "report_file": str(report_file),
                "default_apt": UBUNTU_APT,
                "key_dir_url": keydir.as_uri() + "/",
                "nvidia_container_toolkit_repo_key_url": (keydir / "test.pub").as_uri(),
            },
            "hosts": hosts,
            "children": {g: {"hosts": dict.fromkeys(m)} for g, m in groups.items()},
        }
    }


def throwaway_key(tmp: Path) -> dict:
    """A fresh OpenPGP key (gpg, half a second) and its fingerprint."""
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home)]
    uid = "glassbox test <test@glassbox.invalid>"
    subprocess.run(
        [*gpg, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never"],
        check=True,
        capture_output=True,
    )
    armored = subprocess.run(
        [*gpg, "--armor", "--export"], check=True, capture_output=True, text=True
    ).stdout
    colons = subprocess.run(
        [*gpg, "--with-colons", "--fingerprint"], check=True, capture_output=True, text=True
    ).stdout
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
    fingerprint = next(
        line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")
    )
    return {"armored": armored, "fingerprint": fingerprint}


@pytest.fixture(scope="module")
def run_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nvidia")


@pytest.fixture(scope="module")
def run(run_tmp):
    tmp = run_tmp
    report_file = tmp / "outcomes.json"
    (tmp / "fake.key").write_text("not a real key: check mode never installs it\n")
    key = throwaway_key(tmp)
    keydir = tmp / "keys"
    keydir.mkdir()
    for name in ("3bf863cc.pub", "8793F200.pub", "test.pub", "tk-installed.asc", "tk-mode.asc"):
        (keydir / name).write_text(key["armored"])
    (keydir / "tk-installed.asc").chmod(0o644)
    (keydir / "tk-mode.asc").chmod(0o600)
    (keydir / "tk-wrong.asc").write_text("not the pinned key\n")
    (keydir / "tk-wrong.asc").chmod(0o644)
    (tmp / "hosts.yml").write_text(yaml.safe_dump(inventory(report_file, key)))
    plays_data = plays()
    # The forced hosts would really install: they run only in the second run, with --check.
    runs = [
        {"limit": "all:!forced:!toolkit_check"},
        {
            "limit": "forced:toolkit_check:localhost",
            "check": True,
            "extra_vars": {"report_file": f"{report_file}.check"},
        },
    ]

    def run_one(index: int) -> PlaybookRun:
        return play(
            tmp / f"run{index}",
            plays_data,
            inventory=tmp / "hosts.yml",
            report=False,
            forks=20,
            env={"ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false"},
            timeout=240,
            **runs[index],
        )

    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        output = "".join(result.output for result in pool.map(run_one, range(len(runs))))
    for name in (report_file, Path(f"{report_file}.check")):
        assert name.exists(), output
    outcomes = json.loads(report_file.read_text())
    outcomes.update(json.loads(Path(f"{report_file}.check").read_text()))
    return output, outcomes


def host_output(output: str, host: str) -> str:
    """The lines of ansible-playbook's output that belong to one host's results."""
    lines, keep = [], False
    for line in output.splitlines():
        if line.startswith(("ok: [", "changed: [", "fatal: [", "skipping: [", "failed: [")):
            keep = f"[{host}]" in line
        elif line.startswith(("TASK [", "PLAY [", "PLAY RECAP")):
            keep = False
        if keep:
            lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("case", "method_branch", "pin", "packages"),
    [
        (
            "ubuntu24_default",
            "ubuntu 580",
            [],
            [
                "linux-headers-6.8.0-31-generic",
                "nvidia-headless-580-server-open",
                "nvidia-utils-580-server",
            ],
        ),
        (
            "ubuntu22_proprietary_550",
            "ubuntu 550",
            [],
            [
                "linux-headers-6.8.0-31-generic",
                "nvidia-headless-550-server",
                "nvidia-utils-550-server",
            ],
        ),
        (
            # cloud kernel: the cloud header meta; the pinning package in its own step
            "debian12_default",
            "cuda_repo 580",
            ["nvidia-driver-pinning-580"],
            ["linux-headers-6.1.0-18-cloud-amd64", "linux-headers-cloud-amd64", "nvidia-open"],
        ),
        (
            "debian12_debian_packages",
            "debian 535",
            [],
            [
                "linux-headers-6.1.0-18-amd64",
                "linux-headers-amd64",
                "nvidia-kernel-dkms",
                "nvidia-smi",
                "libcuda1",
                "firmware-nvidia-gsp",
            ],
        ),
        (
            "debian13_cuda_repo",
            "cuda_repo 580",
            ["nvidia-driver-pinning-580"],
            ["linux-headers-6.12.38+deb13-amd64", "linux-headers-amd64", "nvidia-open"],
        ),
        (
            "debian13_cuda_repo_proprietary",
            "cuda_repo 580",
            ["nvidia-driver-pinning-580"],
            ["linux-headers-6.12.38+deb13-rt-amd64", "linux-headers-rt-amd64", "cuda-drivers"],
        ),
        (
            # no package lists yet: the flavour's meta is named anyway (arm64 cloud kernel)
            "debian13_no_lists",
            "cuda_repo 580",
            ["nvidia-driver-pinning-580"],
            [
                "linux-headers-6.12.38+deb13-cloud-arm64",
                "linux-headers-cloud-arm64",
                "nvidia-open",
            ],
        ),
        (
            # signed precompiled modules for the running kernel and its flavour, no DKMS
            "ubuntu24_precompiled_secure_boot",
            "ubuntu 580",
            [],
            [
                "linux-modules-nvidia-580-server-open-6.8.0-31-generic",
                "linux-modules-nvidia-580-server-open-generic",
                "nvidia-headless-no-dkms-580-server-open",
                "nvidia-utils-580-server",
            ],
        ),
        (
            "ubuntu22_hwe_precompiled_proprietary",
            "ubuntu 580",
            [],
            [
                "linux-modules-nvidia-580-server-6.8.0-40-generic",
                "linux-modules-nvidia-580-server-generic-hwe-22.04",
                "nvidia-headless-no-dkms-580-server",
                "nvidia-utils-580-server",
            ],
        ),
        (
            # modules exist for the flavour, not for this kernel: DKMS as before
            "ubuntu24_precompiled_not_for_this_kernel",
            "ubuntu 580",
            [],
            [
                "linux-headers-6.8.0-31-generic",
                "nvidia-headless-580-server-open",
                "nvidia-utils-580-server",
            ],
        ),
    ],
)
def test_install_plan_per_os_and_method(run, case, method_branch, pin, packages):
    output, outcomes = run
    assert case in outcomes, host_output(output, case)
    got = outcomes[case]
    assert (got["action"], got["status"]) == ("install", "installing")
    assert f"{got['method']} {got['branch']}" == method_branch
    assert (got["pin"], got["packages"]) == (pin, packages)
    assert ", ".join(pin + packages) in got["message"]
    assert got["precompiled"] == packages[0].startswith("linux-modules-nvidia-")


def test_pinning_package_goes_in_first_on_its_own(run):
    got = run[1]["debian12_default"]
    assert "nvidia-driver-pinning-580" not in got["packages"]
    assert (
        "nvidia-driver-pinning-580 first, on its own, so apt keeps to branch 580" in got["message"]
    )


def test_precompiled_modules_load_under_secure_boot_without_a_key(run):
    got = run[1]["ubuntu24_precompiled_secure_boot"]
    assert got["action"] == "install"
    assert "Canonical-signed precompiled, no DKMS" in got["message"]
    assert not any(p.startswith("linux-headers-") for p in got["packages"])


def test_running_kernel_headers_gone_stops_with_upgrade_and_reboot(run):
    got = run[1]["debian12_headers_gone"]
    assert (got["action"], got["status"]) == ("blocked-headers", "blocked-kernel-headers")
    assert "KERNEL HEADERS GONE" in got["message"]
    assert (
        "linux-headers-6.1.0-18-cloud-amd64 is neither installed nor installable" in got["message"]
    )
    assert "apt-get install linux-image-cloud-amd64 linux-headers-cloud-amd64" in got["message"]
    assert "reboot" in got["message"]


@pytest.mark.parametrize(
    ("case", "key_file", "fingerprint"),
    [
        ("debian13_cuda_repo", "8793F200.pub", "02182E60104FCDC26EAE1B8597A5D4CB8793F200"),
        ("debian12_default", "3bf863cc.pub", "EB693B3035CD5710E231E123A4B469963BF863CC"),
        ("ubuntu24_default", "3bf863cc.pub", "EB693B3035CD5710E231E123A4B469963BF863CC"),
        ("ubuntu22_proprietary_550", "3bf863cc.pub", "EB693B3035CD5710E231E123A4B469963BF863CC"),
    ],
)
def test_cuda_repository_key_per_os(run, case, key_file, fingerprint):
    got = run[1][case]
    assert (got["key_file"], got["key_fingerprint"]) == (key_file, fingerprint)


@pytest.mark.parametrize(
    ("case", "fabricmanager"),
    [
        (
            "debian13_nvswitch",
            [
                ["nvidia-fabricmanager-580", "nvidia-fabricmanager"],
                ["libnvidia-nscq-580", "libnvidia-nscq"],
            ],
        ),
        ("ubuntu24_nvswitch", [["nvidia-fabricmanager-580"], ["libnvidia-nscq-580"]]),
        # a working 570 driver: Fabric Manager of ITS branch, nothing else touched
        ("nvswitch_working_driver", [["nvidia-fabricmanager-570"], ["libnvidia-nscq-570"]]),
        ("debian13_cuda_repo", []),
    ],
)
def test_fabric_manager_follows_nvswitch_and_the_driver_branch(run, case, fabricmanager):
    output, outcomes = run
    assert case in outcomes, host_output(output, case)
    got = outcomes[case]
    assert got["fabricmanager"] == fabricmanager
    if fabricmanager:
        assert "Fabric Manager" in got["message"]


def test_nvswitch_host_with_debian_packages_is_refused(run):
    output, outcomes = run
    assert "nvswitch_debian_method" not in outcomes
    text = host_output(output, "nvswitch_debian_method")
    assert "which Debian's archive does not package" in text
    assert "nvidia_driver_method: cuda_repo" in text


@pytest.mark.parametrize(
    ("case", "url", "expected_keyring"),
    [
        (
            "cudakey_debian13_rejects",
            "8793F200.pub",
            ("02182E60104FCDC26EAE1B8597A5D4CB8793F200 for Debian-13", "d13.asc"),
        ),
        (
            "cudakey_debian12_rejects",
            "3bf863cc.pub",
            ("EB693B3035CD5710E231E123A4B469963BF863CC for Debian-12", "d12.asc"),
        ),
    ],
)
def test_cuda_key_with_another_fingerprint_is_never_trusted(
    run, run_tmp, case, url, expected_keyring
):
    expected, keyring = expected_keyring
    got = run[1][case]
    assert got["failed"] is True
    assert "Refusing to trust it" in got["msg"]
    assert f"keys/{url} has primary key fingerprint" in got["msg"]
    assert f"expected {expected}" in got["msg"]
    # fetched to the staging file only; apt's keyring was never written
    assert (run_tmp / "keys" / f"{keyring}.download").exists()
    assert not (run_tmp / "keys" / keyring).exists()


def test_cuda_key_with_the_expected_fingerprint_is_installed(run, run_tmp):
    assert run[1]["cudakey_pinned_accepts"] == {"failed": False}
    keys = run_tmp / "keys"
    assert (keys / "ok.asc").read_text() == (keys / "8793F200.pub").read_text()


def test_toolkit_key_is_checked_against_its_fingerprint(run, run_tmp):
    got = run[1]["tkkey_default_rejects"]
    assert got["failed"] is True
    assert "expected C95B321B61E88C1809C4F759DDCAE044F796ECB0" in got["msg"]
    assert not (run_tmp / "keys" / "tk-bad.asc").exists()
    assert run[1]["tkkey_pinned_accepts"] == {"failed": False}
    assert (run_tmp / "keys" / "tk-ok.asc").exists()


def test_an_installed_pinned_key_is_not_fetched_again(run, run_tmp):
    keys = run_tmp / "keys"
    assert run[1]["tkkey_installed_skips"] == {"failed": False}
    assert not (keys / "tk-installed.asc.download").exists()
    assert (keys / "tk-installed.asc").read_text() == (keys / "test.pub").read_text()


def test_an_installed_keyring_that_differs_is_replaced(run, run_tmp):
    keys = run_tmp / "keys"
    for case, keyring in (
        ("tkkey_installed_wrong_replaced", "tk-wrong.asc"),
        ("tkkey_installed_mode_fixed", "tk-mode.asc"),
    ):
        assert run[1][case] == {"failed": False}
        assert (keys / f"{keyring}.download").exists(), case
        assert (keys / keyring).read_text() == (keys / "test.pub").read_text(), case
        assert stat.S_IMODE((keys / keyring).stat().st_mode) == 0o644, case


def test_no_gpu_installs_nothing_and_says_so(run):
    _, outcomes = run
    got = outcomes["no_gpu"]
    assert (got["action"], got["status"]) == ("skip", "skipped-no-gpu")
    assert "No NVIDIA GPU on this host" in got["message"]
    assert "nvidia_driver_force" in got["message"]


def test_forced_mode_installs_without_gpu(run):
    _, outcomes = run
    assert outcomes["no_gpu_forced"]["action"] == "install"


def test_working_driver_is_kept_not_downgraded_or_replaced(run):
    _, outcomes = run
    got = outcomes["working_driver_older_branch"]
    assert (got["action"], got["status"], got["version"]) == ("present", "present", "550.163.01")
    assert "keeping it" in got["message"]
    assert "pinned branch is 580" in got["message"]


def test_secure_boot_without_enrolled_key_stops_and_explains(run):
    _, outcomes = run
    got = outcomes["secure_boot_no_key"]
    assert (got["action"], got["status"]) == ("blocked", "blocked-secure-boot")
    assert "mokutil --import /var/lib/shim-signed/mok/MOK.der" in got["message"]
    assert "Nothing was installed" in got["message"]


@pytest.mark.parametrize("case", ["secure_boot_key_enrolled", "secure_boot_check_off"])
def test_secure_boot_with_key_or_check_off_installs(run, case):
    _, outcomes = run
    assert outcomes[case]["action"] == "install"


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("debian_with_foreign_branch", "nvidia_driver_branch=580 cannot come from Debian"),
        ("debian_method_on_ubuntu", "nvidia_driver_method=debian is not available on Ubuntu-22"),
    ],
)
def test_impossible_combinations_fail_naming_the_variable(run, case, needle):
    output, outcomes = run
    assert case not in outcomes
    assert needle in host_output(output, case)


@pytest.mark.parametrize(
    ("case", "variable"),
    [
        ("bad_method", "nvidia_driver_method"),
        ("bad_reboot_ok", "nvidia_driver_reboot_ok"),
        ("bad_timeout", "nvidia_driver_reboot_timeout"),
        ("bad_default_runtime", "nvidia_container_toolkit_default_runtime"),
        ("bad_verify_mode", "nvidia_container_toolkit_verify_mode"),
    ],
)
def test_argument_specs_reject_bad_values(run, case, variable):
    output, outcomes = run
    assert case not in outcomes
    text = host_output(output, case)
    assert "argument" in text.lower()
    assert variable in text


def test_argument_specs_accept_good_values(run):
    _, outcomes = run
    assert outcomes.get("good_values") == {"passed_validation": True}


def test_never_reboots_over_a_local_connection(run):
    output, outcomes = run
    # Had the guard let the reboot task run, ansible.builtin.reboot would have failed this host
    # ("would reboot the control node") and no outcome would exist.
    got = outcomes["reboot_local_allowed"]
    assert got == {"status": "reboot-required", "required": True, "blocker": "local-connection"}
    text = host_output(output, "reboot_local_allowed")
    assert "REBOOT REQUIRED" in text
    assert "never reboots the machine it runs on" in text


def test_reboot_not_allowed_is_reported(run):
    output, outcomes = run
    got = outcomes["reboot_not_allowed"]
    assert got == {"status": "reboot-required", "required": True, "blocker": "not-allowed"}
    assert "nvidia_driver_reboot_ok is false" in host_output(output, "reboot_not_allowed")


@pytest.mark.parametrize(
    ("case", "status", "install"),
    [
        ("tk_driver_present", "installing", True),
        ("tk_driver_installed", "installing", True),
        ("tk_reboot_pending", "skipped-driver-not-ready", False),
        ("tk_secure_boot", "skipped-driver-not-ready", False),
        ("tk_no_gpu", "skipped-no-gpu", False),
        ("tk_no_gpu_forced", "installing", True),
        ("tk_no_driver_role_gpu", "installing", True),
    ],
)
def test_toolkit_follows_the_driver(run, case, status, install):
    _, outcomes = run
    assert (outcomes[case]["status"], outcomes[case]["install"]) == (status, install)


def test_toolkit_explains_a_pending_reboot(run):
    _, outcomes = run
    assert "nvidia_driver_status=reboot-required" in outcomes["tk_reboot_pending"]["message"]


def test_whole_no_gpu_path_on_this_machine(run):
    output, outcomes = run
    got = outcomes.get("nogpu_here")
    assert got == {
        "driver": "skipped-no-gpu",
        "toolkit": "skipped-no-gpu",
        "runtimes": {},
        "default_runtime": "",
    }, host_output(output, "nogpu_here")
    text = host_output(output, "nogpu_here")
    assert "the NVIDIA driver is not installed" in text
    assert "Docker gets no nvidia runtime" in text
    assert "GPU access from containers not checked" in text
    assert "changed: [nogpu_here]" not in text


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("ic_bookworm_dkms", "needs dkms >= 3.1.8 but apt would install dkms 3.0.10-8+deb12u1"),
        ("ic_bookworm_dkms", "NVIDIA's repository carries a newer one"),
        ("ic_headers_gone", "KERNEL HEADERS GONE: linux-headers-6.1.0-40-amd64"),
        ("ic_branch_newer", "WRONG DRIVER BRANCH"),
        ("ic_branch_missing", "is version '', not of the pinned branch 580"),
    ],
)
def test_install_stops_before_or_after_apt_with_the_reason(run, case, needle):
    got = run[1][case]
    assert got["failed"] is True
    assert needle in got["msg"]


@pytest.mark.parametrize("case", ["ic_nvidia_dkms", "ic_debian_method_old_dkms", "ic_branch_ok"])
def test_install_checks_pass_when_they_should(run, case):
    assert run[1][case] == {"failed": False}


# --- defaults/main.yml and argument_specs agree (README tables: generated, test_role_docs.py)


@pytest.mark.parametrize("role", ["nvidia_driver", "nvidia_container_toolkit"])
def test_defaults_and_specs_agree(role):
    root = REPO / "roles" / role
    specs = yaml.safe_load((root / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    options: dict[str, dict] = {}
    for entry in specs.values():
        options.update(entry["options"])
    defaults = yaml.safe_load((root / "defaults" / "main.yml").read_text())
    assert set(options) == set(defaults)
    for name, spec in options.items():
        assert spec["default"] == defaults[name], name


UNTOUCHED = [
    "/etc/apt/sources.list.d/glassbox-debian-non-free.sources",
    "/etc/apt/sources.list.d/nvidia-container-toolkit.sources",
    "/etc/apt/keyrings/nvidia-container-toolkit.asc",
]


def test_forced_check_mode_shows_the_install_without_doing_it(run):
    output, outcomes = run
    got = outcomes.get("forced_check")
    assert got is not None, host_output(output, "forced_check")
    assert got["driver"] == "would-install"
    assert got["toolkit"] == "would-install"
    assert {"nvidia-kernel-dkms", "nvidia-smi", "libcuda1"} <= set(got["packages"])
    # The runtime goes to docker_engine's daemon.json through its entry point, as default.
    assert got["runtimes"] == {"nvidia": {"path": "nvidia-container-runtime"}}
    assert got["default_runtime"] == "nvidia"
    text = host_output(output, "forced_check")
    assert "Would install: linux-headers-" in text
    assert "nvidia-kernel-dkms" in text


@pytest.mark.parametrize("path", UNTOUCHED)
def test_forced_check_mode_left_this_machine_alone(run, path):
    assert not Path(path).exists(), f"check mode created {path}"


@pytest.mark.parametrize(
    ("case", "status"),
    [("tkc_gpu_driver_would_install", "installing"), ("tkc_no_gpu", "skipped-no-gpu")],
)
def test_toolkit_in_check_mode_follows_a_driver_that_would_be_installed(run, case, status):
    _, outcomes = run
    assert outcomes[case]["status"] == status
