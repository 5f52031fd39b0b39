"""molecule/gpu's vLLM checks (molecule/gpu/tasks/vllm_gpu.yml) run against stand-in tools.

No GPU here, so the checks that only a GPU server can run are proven the other way round: each
faked host gives `nvidia-smi`, `systemctl` and `docker` the answers of one situation (through
stand-ins first on PATH that read the host's answer files), and the task file must pass the
healthy host and stop every broken one at the check meant for it. One batched run.
"""

from pathlib import Path

import pytest
import yaml

from tests.ansible_run import local_inventory, play

pytestmark = pytest.mark.roles

REPO = Path(__file__).resolve().parents[1]
TASKS = REPO / "molecule" / "gpu" / "tasks" / "vllm_gpu.yml"

ORDERED = "network-online.target nvidia-cdi-refresh.service containerd.service sysinit.target"
UNORDERED = "network-online.target containerd.service sysinit.target"
GPU_SERVICE = {
    "image": "vllm/vllm-openai:v0.31.0",
    "deploy": {
        "resources": {
            "reservations": {"devices": [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]}
        }
    },
}
TWO_GPU_SERVICE = {
    "image": "vllm/vllm-openai:v0.31.0",
    "deploy": {
        "resources": {
            "reservations": {
                "devices": [{"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}]
            }
        }
    },
}
CPU_SERVICE = {"image": "vllm/vllm-openai-cpu:v0.31.0-x86_64"}


def smi(*versions: str) -> str:
    """nvidia-smi --query-gpu=driver_version,uuid,name --format=csv,noheader, one GPU a line."""
    return "".join(
        f"{version}, GPU-{index:08d}-aaaa-bbbb-cccc-dddddddddddd, NVIDIA L4\n"
        for index, version in enumerate(versions)
    )


HEALTHY = {
    "gpus": 1,
    "smi": smi("580.95.05"),
    "after": ORDERED,
    "enabled": "enabled\nenabled\n",
    "static_spec": False,
    "services": {"vllm-a": GPU_SERVICE, "vllm-cpu": CPU_SERVICE},
    "ps": "3f2a1b\n",
    "exec": "cuda True 1\n",
}
# host -> (its situation, the task that must stop it; None = passes)
CASES = {
    "healthy": (HEALTHY, None),
    "two_gpus_one_model": (
        {
            **HEALTHY,
            "gpus": 2,
            "smi": smi("580.95.05", "580.95.05"),
            "services": {"vllm-a": TWO_GPU_SERVICE},
            "exec": "cuda True 2\n",
        },
        None,
    ),
    "static_spec_without_ordering": ({**HEALTHY, "after": UNORDERED, "static_spec": True}, None),
    "driver_too_old": (
        {**HEALTHY, "smi": smi("570.172.08")},
        "Check the driver is at least vllm_gpu_driver_min on every GPU",
    ),
    "driver_misses_a_gpu": (
        {**HEALTHY, "gpus": 2},
        "Check the driver is at least vllm_gpu_driver_min on every GPU",
    ),
    "driver_silent": (
        {**HEALTHY, "smi": "NVIDIA-SMI has failed because it couldn't communicate with it.\n"},
        "Check the driver is at least vllm_gpu_driver_min on every GPU",
    ),
    "docker_not_ordered_after_cdi_refresh": (
        {**HEALTHY, "after": UNORDERED},
        "Check a CDI spec for the GPUs exists before Docker starts containers after a reboot",
    ),
    "cdi_refresh_disabled": (
        {**HEALTHY, "enabled": "disabled\nenabled\n"},
        "Check a CDI spec for the GPUs exists before Docker starts containers after a reboot",
    ),
    "no_gpu_model": (
        {**HEALTHY, "services": {"vllm-cpu": CPU_SERVICE}},
        "Check converge put at least one model on the GPU image",
    ),
    "container_not_running": (
        {**HEALTHY, "ps": ""},
        "Find the running container of each GPU model",
    ),
    "container_without_cuda": (
        {**HEALTHY, "exec": "cuda False 0\n"},
        "Check each GPU model's container sees exactly the GPUs reserved for it",
    ),
    "container_sees_fewer_gpus": (
        {
            **HEALTHY,
            "gpus": 2,
            "smi": smi("580.95.05", "580.95.05"),
            "services": {"vllm-a": TWO_GPU_SERVICE},
            "exec": "cuda True 1\n",
        },
        "Check each GPU model's container sees exactly the GPUs reserved for it",
    ),
}

STANDINS = {
    "nvidia-smi": 'cat "$FAKE_DIR/$FAKE_CASE/smi"\n',
    "systemctl": (
        'case "$1" in\n'
        '  show) cat "$FAKE_DIR/$FAKE_CASE/after" ;;\n'
        '  is-enabled) cat "$FAKE_DIR/$FAKE_CASE/enabled" ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    ),
    "docker": (
        'case "$1" in\n'
        '  ps) cat "$FAKE_DIR/$FAKE_CASE/ps" ;;\n'
        '  exec) cat "$FAKE_DIR/$FAKE_CASE/exec" ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    ),
}

PLAYBOOK = f"""
- name: Run molecule/gpu's vLLM checks on faked hosts
  hosts: all
  gather_facts: false
  environment:
    FAKE_CASE: "{{{{ inventory_hostname }}}}"
  tasks:
    - name: The checks
      ansible.builtin.include_tasks: {TASKS}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu-verify")
    fakes, bin_dir = tmp / "fakes", tmp / "bin"
    bin_dir.mkdir()
    for name, body in STANDINS.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    hosts = {}
    for host, (case, _task) in CASES.items():
        d = fakes / host
        (d / "vllm").mkdir(parents=True)
        (d / "cdi").mkdir()
        for key in ("smi", "after", "enabled", "ps", "exec"):
            (d / key).write_text(case[key])
        if case["static_spec"]:
            (d / "cdi" / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
        (d / "vllm" / "compose.yaml").write_text(
            yaml.safe_dump({"name": "vllm", "services": case["services"]})
        )
        hosts[host] = {
            "preflight_gpu_count": case["gpus"],
            "__gpu_verify_driver_min": 580,
            "__gpu_verify_vllm_dir": str(d / "vllm"),
            "__gpu_verify_cdi_static_dir": str(d / "cdi"),
        }
    result = play(
        tmp,
        yaml.safe_load(PLAYBOOK),
        inventory=local_inventory(hosts, groups={}),
        env={"FAKE_DIR": str(fakes)},
        path=[bin_dir],
        forks=8,
    )
    report = result.report
    failures, asserted = {}, {}
    for task in report["plays"][0]["tasks"]:
        name = task["task"]["name"]
        for host, result in task["hosts"].items():
            if result.get("failed"):
                failures[host] = (name, str(result.get("msg", "")))
            elif name.startswith("Check ") and not result.get("skipped"):
                asserted.setdefault(host, []).append(name)
    return {"failures": failures, "asserted": asserted}


@pytest.mark.parametrize("host", sorted(h for h, (_c, task) in CASES.items() if task is None))
def test_healthy_hosts_pass_every_check(run, host):
    assert host not in run["failures"], run["failures"].get(host)
    assert len(run["asserted"][host]) == 4, run["asserted"][host]


@pytest.mark.parametrize("host", sorted(h for h, (_c, task) in CASES.items() if task is not None))
def test_each_broken_host_stops_at_its_check(run, host):
    assert host in run["failures"], f"{host} passed molecule/gpu's checks"
    assert run["failures"][host][0] == CASES[host][1], run["failures"][host]
