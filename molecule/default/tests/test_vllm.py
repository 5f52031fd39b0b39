"""vLLM role in state "configured": both variants rendered, validated, nothing started."""

import json

import pytest
import yaml

PROJECT = "/opt/glassbox/vllm"
COMPOSE = f"{PROJECT}/compose.yaml"
ENV_FILE = f"{PROJECT}/vllm.env"
SECRETS = "/etc/glassbox/vllm/secrets.json"
GPU_SERVICE = "vllm-qwen2-5-1-5b-instruct"
CPU_SERVICE = "vllm-qwen2-5-0-5b-instruct"


@pytest.fixture(scope="module")
def compose(host):
    with host.sudo():
        return yaml.safe_load(host.file(COMPOSE).content_string)


@pytest.fixture(scope="module")
def api_key(host):
    with host.sudo():
        return json.loads(host.file(SECRETS).content_string)["api_key"]


def test_files_and_modes(host):
    with host.sudo():
        project = host.file(PROJECT)
        assert project.is_directory
        assert project.user == "root"
        assert project.mode == 0o750
        assert host.file(COMPOSE).mode == 0o640
        env = host.file(ENV_FILE)
        assert env.user == "root"
        assert env.mode == 0o600
        secrets = host.file(SECRETS)
        assert secrets.mode == 0o600
        assert host.file("/etc/glassbox/vllm").mode == 0o700


def test_env_file_holds_the_key_and_no_empty_hf_token(host, api_key):
    with host.sudo():
        lines = host.file(ENV_FILE).content_string.splitlines()
    assert f"VLLM_API_KEY={api_key}" in lines
    assert api_key.startswith("sk-vllm-")
    assert len(api_key) == len("sk-vllm-") + 48
    # No token in the inventory: the variable is left out, never written empty.
    assert not [line for line in lines if line.startswith("HF_TOKEN")]


def test_key_is_not_in_compose_file(host, api_key):
    with host.sudo():
        assert api_key not in host.file(COMPOSE).content_string


def test_gpu_service_requests_its_gpu(compose):
    svc = compose["services"][GPU_SERVICE]
    assert svc["image"] == "vllm/vllm-openai:v0.31.0"
    devices = svc["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}]
    assert svc["ipc"] == "host"
    assert svc["ports"] == ["127.0.0.1:18000:8000"]  # behind the proxy on 8000
    cmd = svc["command"]
    assert cmd[0] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.85"
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "1"
    assert cmd[cmd.index("--served-model-name") + 1] == "qwen2.5-1.5b-instruct"
    assert "--enable-prefix-caching" in cmd
    assert "environment" not in svc


def test_cpu_service_has_no_gpu_request(compose):
    svc = compose["services"][CPU_SERVICE]
    assert svc["image"] == "vllm/vllm-openai-cpu:v0.31.0-x86_64"
    assert "deploy" not in svc
    assert "ipc" not in svc
    assert svc["environment"] == {"VLLM_CPU_KVCACHE_SPACE": "2"}
    assert svc["ports"] == ["127.0.0.1:18001:8000"]  # behind the proxy on 8001
    assert "--gpu-memory-utilization" not in svc["command"]


def test_no_key_on_any_command_line(compose):
    for svc in compose["services"].values():
        assert not [a for a in svc["command"] if a.startswith("--api-key")]
        assert svc["env_file"] == [ENV_FILE]


def test_caches_on_named_volumes(host, compose):
    assert set(compose["volumes"]) == {"hf_cache", "compile_cache"}
    for svc in compose["services"].values():
        assert "hf_cache:/root/.cache/huggingface" in svc["volumes"]
        assert "compile_cache:/root/.cache/vllm" in svc["volumes"]
    with host.sudo():
        for name in ("vllm_hf_cache", "vllm_compile_cache"):
            labels = json.loads(
                host.check_output(f"docker volume inspect --format '{{{{json .Labels}}}}' {name}")
            )
            assert labels["com.docker.compose.project"] == "vllm"


def test_real_compose_config_accepts_both_variants(host):
    with host.sudo():
        out = host.run(f"docker compose --project-directory {PROJECT} config --format json")
    assert out.rc == 0, out.stderr
    config = json.loads(out.stdout)
    assert set(config["services"]) == {GPU_SERVICE, CPU_SERVICE}
    gpu = config["services"][GPU_SERVICE]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia"
    assert gpu["capabilities"] == ["gpu"]


def test_configured_starts_nothing(host):
    with host.sudo():
        out = host.check_output("docker ps -a --filter label=com.docker.compose.project=vllm -q")
    assert out.strip() == ""
