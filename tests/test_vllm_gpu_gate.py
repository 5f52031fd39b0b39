"""vllm on GPU hosts whose NVIDIA driver or toolkit is not ready (issue 10, item 7).

The role runs its main entry point (vllm_state: started) with real Ansible on faked hosts: the
nvidia_driver / nvidia_container_toolkit facts are inventory variables, and stand-ins for
`nvidia-smi` and `docker` come first on PATH, and a stand-in Docker API (tests/fake_docker_api.py)
serves the volumes. The fake docker CLI answers only what `configured` needs (compose config)
and fails on anything else, so a host that goes on to
start its containers fails in the start step, and a host that is held back finishes without
reaching it. The fake nvidia-smi answers driver 580.95.05 for one GPU, or fails as it does
before the reboot that loads a new driver on hosts with `fake_smi: fails` (the play passes it
in the environment). One batched run.
"""

from pathlib import Path

import pytest
import yaml

from tests.ansible_run import local_inventory, play
from tests.fake_docker_api import FakeDockerAPI

pytestmark = pytest.mark.roles

START_TASK = "Pull the pinned images that are missing"  # compose_project's first start step
GPU = {"preflight_gpu_present": True, "preflight_gpu_count": 1}
READY = {"nvidia_driver_status": "present", "nvidia_container_toolkit_status": "installed"}
REBOOT = {
    "nvidia_driver_status": "reboot-required",
    "nvidia_driver_reboot_required": True,
    "nvidia_container_toolkit_status": "skipped-driver-not-ready",
}
SECURE_BOOT = {
    "nvidia_driver_status": "blocked-secure-boot",
    "nvidia_container_toolkit_status": "skipped-driver-not-ready",
}
CPU_MODEL = [{"model": "Qwen/Qwen2.5-0.5B-Instruct", "port": 8000, "accelerator": "cpu"}]

HOSTS = {
    "ready": {**GPU, **READY},
    "ready_without_facts": {**GPU},
    "reboot_pending": {**GPU, **REBOOT},
    "secure_boot": {**GPU, **SECURE_BOOT},
    "toolkit_missing": {
        **GPU,
        "nvidia_driver_status": "installed",
        "nvidia_container_toolkit_status": "skipped-driver-not-ready",
    },
    "reboot_pending_configured": {**GPU, **REBOOT, "vllm_state": "configured"},
    "reboot_pending_cpu_models": {**GPU, **REBOOT, "vllm_models": CPU_MODEL},
    "driver_too_old": {**GPU, **READY, "vllm_gpu_driver_min": 590},
    # nvidia-smi fails on these (driver installed, module not loaded)
    "smi_fails_without_facts": {**GPU, "fake_smi": "fails"},
    "smi_fails_cpu_host": {
        "preflight_gpu_present": False,
        "preflight_gpu_count": 0,
        "fake_smi": "fails",
    },
    "gpu_forced_without_gpu": {
        "preflight_gpu_present": False,
        "preflight_gpu_count": 0,
        "nvidia_driver_status": "skipped-no-gpu",
        "nvidia_container_toolkit_status": "skipped-no-gpu",
        "vllm_accelerator": "gpu",
        "fake_smi": "fails",
    },
}

PLAYBOOK = """
- name: Run the vllm role on faked GPU hosts
  hosts: all
  gather_facts: false
  environment:
    FAKE_SMI: "{{ fake_smi | default('answers') }}"
  tasks:
    - name: Fake the architecture fact
      ansible.builtin.set_fact:
        architecture: x86_64
        cacheable: true
    - name: Run the role
      ansible.builtin.include_role:
        name: vllm
    - name: Keep the published status
      ansible.builtin.copy:
        content: "{{ vllm_status }}"
        dest: "{{ out }}/{{ inventory_hostname }}/status"
        mode: "0600"
"""

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$*" in
  "compose --project-name vllm --project-directory "*" config --quiet") exit 0 ;;
esac
echo "fake docker: not supported here: $*" >&2
exit 1
"""


SMI = """#!/bin/sh
if [ "$FAKE_SMI" = fails ]; then
  echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
  exit 9
fi
echo "580.95.05, GPU-00000000-aaaa-bbbb-cccc-dddddddddddd, NVIDIA L4"
"""


def _run(tmp: Path, hosts: dict, smi: str) -> dict:
    out = tmp / "out"
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "nvidia-smi").write_text(smi)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    common = {
        "out": str(out),
        "vllm_project_dir": str(out) + "/{{ inventory_hostname }}/vllm",
        "vllm_secrets_file": str(out) + "/{{ inventory_hostname }}/etc/secrets.json",
        # Plain HTTP: the proxy's sites need caddy (tests/test_vllm_contract.py covers TLS).
        "glassbox_tls": False,
        "vllm_ready_timeout": 1,
        "vllm_ready_delay": 1,
        # the fake docker cannot pull: fail at once instead of retrying for 20 s per host
        "compose_project_pull_retries": 1,
        "compose_project_pull_delay": 0,
    }
    with FakeDockerAPI(tmp / "docker.sock") as api:
        result = play(
            tmp,
            yaml.safe_load(PLAYBOOK),
            inventory=local_inventory(hosts, groups={}, common=common),
            env={"FAKE_DOCKER_LOG": str(tmp / "docker.log"), "DOCKER_HOST": api.docker_host},
            path=[bin_dir],
            forks=8,
        )
    report = result.report
    failures, ran, messages = {}, {}, {}
    for task in report["plays"][0]["tasks"]:
        name = task["task"]["name"].split(" : ", 1)[-1]
        for host, result in task["hosts"].items():
            if not result.get("skipped"):
                ran.setdefault(host, []).append(name)
            if result.get("failed"):
                failures[host] = (name, str(result.get("msg", "")))
            if name == "Say why the GPU models do not start here" and "msg" in result:
                messages[host] = result["msg"]
    return {"out": out, "failures": failures, "ran": ran, "messages": messages}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("gate"), HOSTS, SMI)


def _status(run, host):
    return (run["out"] / host / "status").read_text()


def _held_back(run, host, *words):
    assert host not in run["failures"], run["failures"].get(host)
    assert START_TASK not in run["ran"][host], f"{host} went on to start its containers"
    assert "Create the named volumes, labelled as Compose's own" in run["ran"][host]
    message = run["messages"][host]
    for word in words:
        assert word in message, f"{word!r} not in {message}"
    return message


def _went_on_to_start(run, host):
    # the fake docker cannot start anything: reaching the start step is the failure we expect
    assert START_TASK in run["ran"][host], run["ran"][host]
    assert host not in run["messages"]


def test_ready_gpu_host_goes_on_to_start(run):
    _went_on_to_start(run, "ready")
    _went_on_to_start(run, "ready_without_facts")


def test_reboot_pending_holds_vllm_back_with_the_reboot_message(run):
    message = _held_back(
        run,
        "reboot_pending",
        "REBOOT REQUIRED",
        "reboot-required",
        "not started",
        "Reboot it",
    )
    assert "qwen2.5-0.5b-instruct" in message
    assert _status(run, "reboot_pending") == "skipped-gpu-not-ready"


def test_secure_boot_block_holds_vllm_back(run):
    _held_back(run, "secure_boot", "Secure Boot", "blocked-secure-boot", "not started")
    assert _status(run, "secure_boot") == "skipped-gpu-not-ready"


def test_missing_toolkit_holds_vllm_back(run):
    _held_back(run, "toolkit_missing", "nvidia_container_toolkit_status=skipped-driver-not-ready")


def test_configured_state_says_so_and_stays_configured(run):
    _held_back(run, "reboot_pending_configured", "REBOOT REQUIRED", "only configured")
    assert _status(run, "reboot_pending_configured") == "configured"


def test_cpu_models_do_not_wait_for_the_gpu_driver(run):
    _went_on_to_start(run, "reboot_pending_cpu_models")


def test_old_driver_fails_naming_the_minimum(run):
    task, message = run["failures"]["driver_too_old"]
    assert task == "Check the driver is new enough for the GPU image"
    assert "580.95.05" in message
    assert "vllm_gpu_driver_min=590" in message
    assert "cu129" not in message  # no unverified fallback image is recommended


def test_silent_driver_holds_vllm_back_when_no_earlier_play_ran(run):
    _held_back(
        run,
        "smi_fails_without_facts",
        "nvidia-smi does not answer",
        "exit 9",
        "couldn't communicate",
    )
    assert _status(run, "smi_fails_without_facts") == "skipped-gpu-not-ready"


def test_cpu_host_never_asks_the_driver(run):
    _went_on_to_start(run, "smi_fails_cpu_host")
    assert "Ask the NVIDIA driver for its version" not in run["ran"]["smi_fails_cpu_host"]


def test_gpu_image_forced_on_a_host_without_gpu_is_held_back(run):
    _held_back(run, "gpu_forced_without_gpu", "no NVIDIA GPU", "skipped-no-gpu")
