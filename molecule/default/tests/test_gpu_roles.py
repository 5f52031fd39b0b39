"""The GPU roles' no-GPU path, as converged in the Debian 13 container (no NVIDIA device).

site.yml ran nvidia_driver and nvidia_container_toolkit here for real (the container is in the
inference group). Without a GPU they must leave no trace: no NVIDIA package, repository, key,
CDI spec or Docker runtime. Their facts and messages are checked in tests/test_nvidia_roles.py.
"""

from __future__ import annotations

import json

import pytest

NVIDIA_SOURCES = [
    "/etc/apt/sources.list.d/nvidia-container-toolkit.sources",
    "/etc/apt/sources.list.d/nvidia-cuda.sources",
    "/etc/apt/sources.list.d/glassbox-debian-non-free.sources",
    "/etc/apt/keyrings/nvidia-container-toolkit.asc",
    "/etc/apt/keyrings/nvidia-cuda.asc",
    "/etc/cdi/nvidia.yaml",
]


def test_the_target_really_has_no_nvidia_gpu(host):
    # The premise of every other test here: preflight found no NVIDIA display device.
    out = host.check_output(
        "cat /sys/bus/pci/devices/*/vendor 2>/dev/null | grep -c 0x10de || true"
    )
    assert out.strip() == "0"


def test_no_nvidia_or_cuda_package_installed(host):
    installed = host.check_output("dpkg-query -W -f='${Package} ${Status}\\n'").splitlines()
    names = [line.split()[0] for line in installed if line.endswith("installed")]
    assert names, "dpkg-query listed no installed package at all"
    nvidia = [
        n for n in names if "nvidia" in n or n.startswith(("libcuda", "cuda-")) or n == "dkms"
    ]
    assert nvidia == []


@pytest.mark.parametrize("path", NVIDIA_SOURCES)
def test_no_nvidia_repository_key_or_cdi_spec(host, path):
    assert not host.file(path).exists


def test_daemon_json_has_no_nvidia_runtime(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert "nvidia" not in config.get("runtimes", {})
    assert config.get("default-runtime", "runc") != "nvidia"


def test_docker_knows_no_nvidia_runtime(host):
    runtimes = json.loads(host.check_output("docker info --format '{{json .Runtimes}}'"))
    assert "runc" in runtimes
    assert "nvidia" not in runtimes
    assert host.check_output("docker info --format '{{.DefaultRuntime}}'") == "runc"
