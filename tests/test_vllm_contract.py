"""The vllm role rendered by real Ansible (tasks_from: render) for several inventories.

One ansible-playbook run covers every case: each case is a host of a local inventory, the good
ones render compose.yaml, vllm.env and vllm_connection into a temporary directory, the bad ones
must fail with a message naming the variable. Compose v2 is not needed (the Molecule scenario
runs the real `docker compose config`).
"""

import json
from pathlib import Path

import pytest
import yaml

from tests.ansible_run import local_inventory, play
from tests.proxy_harness import caddy_binary, make_ca

# A whole role entry point rendered by real Ansible for a matrix of hosts: the roles tier.
pytestmark = pytest.mark.roles

ROOT = Path(__file__).resolve().parents[1]
GPU_IMAGE = "vllm/vllm-openai:v0.31.0"
CPU_IMAGE = "vllm/vllm-openai-cpu:v0.31.0-x86_64"
# upstream's arm64 CPU tag (.buildkite/scripts/publish-release-images.sh: v<version>-arm64)
CPU_IMAGE_ARM = "vllm/vllm-openai-cpu:v0.31.0-arm64"
ARM = {"fake_architecture": "aarch64"}
NO_GPU = {"preflight_gpu_present": False, "preflight_gpu_count": 0}


def gpus(count):
    return {"preflight_gpu_present": True, "preflight_gpu_count": count}


def model(name, port, **extra):
    return {"model": f"Qwen/{name}", "port": port, **extra}


GOOD = {
    "cpu_default": {**NO_GPU},
    "gpu_auto": {**gpus(1)},
    "gpu_forced": {
        **NO_GPU,
        "vllm_accelerator": "gpu",
        "vllm_shm_size": "16g",
        "vllm_public_host": "llm.example.internal",
        "vllm_models": [model("Qwen2.5-7B-Instruct", 9000, tensor_parallel_size=2, gpu_count=2)],
    },
    "cpu_aarch64": {**NO_GPU, **ARM},
    "gpu_aarch64_with_cpu_model": {
        **gpus(1),
        **ARM,
        "vllm_models": [model("A", 8000), model("B", 8001, accelerator="cpu")],
    },
    "two_models": {
        **gpus(2),
        "vllm_hf_token": "hf_test_token_value",
        "vllm_api_key": "sk-given-by-vault",
        "vllm_bind_address": "10.0.0.5",
        "vllm_models": [
            model(
                "Qwen2.5-1.5B-Instruct",
                8000,
                served_name="big",
                device_ids=["0"],
                dtype="bfloat16",
                extra_args=["--enable-prefix-caching", "--max-num-seqs", "64"],
            ),
            model(
                "Qwen2.5-0.5B-Instruct",
                8001,
                served_name="small",
                device_ids=["1"],
                gpu_memory_utilization=0.5,
            ),
            model("Qwen2.5-0.5B-Instruct", 8002, served_name="cpu-small", accelerator="cpu"),
        ],
    },
    # Prices for Langfuse's cost per trace: one given per 1M tokens, one from the hardware.
    "priced": {
        **NO_GPU,
        "vllm_models": [
            model(
                "A",
                8000,
                served_name="a",
                price={"input_per_million": 0.2, "output_per_million": "0.6"},
            ),
            model(
                "B", 8001, served_name="b", price={"hourly_cost": 2.88, "tokens_per_second": 800}
            ),
            model("C", 8002, served_name="c"),
        ],
    },
}

# With glassbox_tls (the other cases set it false: plain HTTP as before the proxy).
TLS = {"glassbox_tls": True}
GOOD_TLS = {
    "tls-default": {**NO_GPU, **TLS},
    "tls-two": {
        **NO_GPU,
        **TLS,
        "vllm_backend_port_offset": 20000,
        "vllm_metrics_cidrs": ["10.1.0.0/16"],
        "vllm_models": [model("A", 8000, served_name="a"), model("B", 8443, served_name="b")],
    },
}
GOOD.update(GOOD_TLS)

# host -> (vars, words the failure message must contain)
BAD = {
    "bad-tls-bind": (
        {**NO_GPU, **TLS, "vllm_bind_address": "10.0.0.5"},
        ["vllm_bind_address", "10.0.0.5", "glassbox_tls", "127.0.0.1"],
    ),
    "bad-tls-offset": (
        {**NO_GPU, **TLS, "vllm_models": [model("A", 60000)]},
        ["vllm_models[0].port 60000", "vllm_backend_port_offset", "70000", "1-65535"],
    ),
    "bad-tls-backend-clash": (
        {**NO_GPU, **TLS, "vllm_models": [model("A", 8000), model("B", 18000)]},
        ["vllm_models[0].port 8000", "18000", "vllm_models[1]", "vllm_backend_port_offset"],
    ),
    "bad-tls-key": (
        {**NO_GPU, **TLS, "vllm_api_key": "sk key with spaces"},
        ["vllm_api_key", "glassbox_tls", "literally"],
    ),
    "bad_tp_over_host_gpus": (
        {**gpus(1), "vllm_models": [model("Qwen2.5-7B-Instruct", 8000, tensor_parallel_size=2)]},
        ["vllm_models[0].tensor_parallel_size", "preflight_gpu_count"],
    ),
    "bad_tp_over_device_ids": (
        {
            **NO_GPU,
            "vllm_accelerator": "gpu",
            "vllm_models": [model("A", 8000, tensor_parallel_size=2, device_ids=["0"])],
        },
        ["vllm_models[0].tensor_parallel_size", "device_ids"],
    ),
    "bad_same_port": (
        {**NO_GPU, "vllm_models": [model("A", 8000), model("B", 8000)]},
        ["vllm_models[1].port 8000", "vllm_models[0]"],
    ),
    "bad_same_served_name": (
        {
            **NO_GPU,
            "vllm_models": [model("A", 8000, served_name="x"), model("B", 8001, served_name="x")],
        },
        ["vllm_models[1].served_name", "unique"],
    ),
    "bad_memory_above_one": (
        {**NO_GPU, "vllm_models": [model("A", 8000, gpu_memory_utilization=1.5)]},
        ["vllm_models[0].gpu_memory_utilization", "at most 1"],
    ),
    "bad_memory_negative": (
        {**NO_GPU, "vllm_models": [model("A", 8000, gpu_memory_utilization=-0.2)]},
        ["vllm_models[0].gpu_memory_utilization", "greater than 0"],
    ),
    "bad_memory_zero": (
        {**NO_GPU, "vllm_models": [model("A", 8000, gpu_memory_utilization=0)]},
        ["vllm_models[0].gpu_memory_utilization"],
    ),
    "bad_empty_model": (
        {**NO_GPU, "vllm_models": [{"model": "  ", "port": 8000}]},
        ["vllm_models[0].model is empty"],
    ),
    "bad_missing_model": (
        {**NO_GPU, "vllm_models": [{"port": 8000}]},
        ["vllm_models", "model"],
    ),
    "bad_state": (
        {**NO_GPU, "vllm_state": "sideways"},
        ["vllm_state", "started", "configured", "absent"],
    ),
    "bad_accelerator": (
        {**NO_GPU, "vllm_accelerator": "tpu"},
        ["vllm_accelerator", "auto", "gpu", "cpu"],
    ),
    "bad_dtype": (
        {**NO_GPU, "vllm_models": [model("A", 8000, dtype="int4")]},
        ["dtype", "bfloat16"],
    ),
    "bad_api_key_in_args": (
        {**NO_GPU, "vllm_models": [model("A", 8000, extra_args=["--api-key=secret"])]},
        ["vllm_models[0].extra_args", "--api-key", "vllm_api_key"],
    ),
    "bad_latest_image": (
        {**NO_GPU, "vllm_image_cpu": "vllm/vllm-openai-cpu:latest"},
        ["vllm_image_cpu", "pin"],
    ),
    "bad_gpus_without_ids": (
        {**gpus(2), "vllm_models": [model("A", 8000), model("B", 8001)]},
        ["vllm_models[0]", "device_ids"],
    ),
    "bad_device_beyond_host": (
        {**gpus(1), "vllm_models": [model("A", 8000, device_ids=["1"])]},
        ["vllm_models[0].device_ids", "preflight_gpu_count"],
    ),
    "bad_shared_gpu_overcommit": (
        {
            **gpus(1),
            "vllm_models": [
                model("A", 8000, device_ids=["0"], gpu_memory_utilization=0.6),
                model("B", 8001, device_ids=["0"], gpu_memory_utilization=0.6),
            ],
        },
        ["GPU 0", "gpu_memory_utilization", "1.20"],
    ),
    "bad_empty_model_list": ({**NO_GPU, "vllm_models": []}, ["vllm_models is empty"]),
    "bad_x86_cpu_image_on_aarch64": (
        {**NO_GPU, **ARM, "vllm_image_cpu": CPU_IMAGE},
        ["vllm_image_cpu", "x86_64 build", "aarch64", CPU_IMAGE_ARM],
    ),
    "bad_arm_cpu_image_on_x86_64": (
        {**NO_GPU, "vllm_image_cpu": CPU_IMAGE_ARM},
        ["vllm_image_cpu", "aarch64 build", "x86_64"],
    ),
    "bad_x86_gpu_tag_on_aarch64": (
        {**gpus(1), **ARM, "vllm_image_gpu": "vllm/vllm-openai:v0.31.0-x86_64"},
        ["vllm_image_gpu", "x86_64 build", "multi-arch"],
    ),
    "bad_facts_not_gathered": (
        {**NO_GPU, "fake_architecture": ""},
        ["vllm_image_cpu is empty", "architecture", "not gathered"],
    ),
    "bad_no_cpu_image_for_arch": (
        {**NO_GPU, "fake_architecture": "ppc64le"},
        ["vllm_image_cpu is empty", "ppc64le", "x86_64, aarch64"],
    ),
    "bad_price_negative": (
        {
            **NO_GPU,
            "vllm_models": [
                model("A", 8000, price={"input_per_million": -1, "output_per_million": 1})
            ],
        },
        ["vllm_models[0].price.input_per_million", "0 or more"],
    ),
    "bad_price_not_a_number": (
        {
            **NO_GPU,
            "vllm_models": [
                model("A", 8000, price={"input_per_million": "cheap", "output_per_million": 1})
            ],
        },
        ["input_per_million", "vllm_models", "float"],
    ),
    "bad_price_zero_throughput": (
        {
            **NO_GPU,
            "vllm_models": [model("A", 8000, price={"hourly_cost": 2, "tokens_per_second": 0})],
        },
        ["vllm_models[0].price.tokens_per_second is 0"],
    ),
    "bad_price_hourly_cost_alone": (
        {**NO_GPU, "vllm_models": [model("A", 8000, price={"hourly_cost": 2})]},
        ["vllm_models[0].price.tokens_per_second", "benchmarks/throughput.py"],
    ),
}

PLAYBOOK = """
- name: Render the vllm role for every case
  hosts: all
  gather_facts: false
  tasks:
    - name: Fake the CPU architecture fact (x86_64 unless the case says otherwise)
      ansible.builtin.set_fact:
        architecture: "{{ fake_architecture | default('x86_64') }}"
        cacheable: true
    - name: The proxy's main Caddyfile first, as playbooks/edge.yml does (TLS cases)
      ansible.builtin.include_role:
        name: reverse_proxy
        tasks_from: render
      when: glassbox_tls
    - name: Render
      ansible.builtin.include_role:
        name: vllm
        tasks_from: render
    - name: Keep the published connection
      ansible.builtin.copy:
        content: "{{ vllm_connection | to_json }}"
        dest: "{{ out }}/{{ inventory_hostname }}/connection.json"
        mode: "0600"
      no_log: true
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vllm")
    out = tmp / "out"
    hosts = {name: dict(v) for name, v in GOOD.items()}
    hosts.update({name: dict(v) for name, (v, _words) in BAD.items()})
    make_ca(tmp / "tls", sorted(GOOD_TLS))
    common = {
        "glassbox_tls": False,
        "glassbox_tls_dir": str(tmp / "tls"),
        "reverse_proxy_config_dir": str(out) + "/{{ inventory_hostname }}/caddy",
        "reverse_proxy_caddy_bin": caddy_binary(),
        "reverse_proxy_group": "root",
        "reverse_proxy_reload": False,
        "out": str(out),
        "vllm_project_dir": str(out) + "/{{ inventory_hostname }}/opt/glassbox/vllm",
        "vllm_secrets_file": str(out) + "/{{ inventory_hostname }}/etc/secrets.json",
    }
    result = play(
        tmp,
        yaml.safe_load(PLAYBOOK),
        inventory=local_inventory(hosts, groups={}, common=common),
        forks=8,
    )
    failures = {h: " ".join(m) for h in hosts if (m := result.failures(h))}
    report, log = result.report, result.output
    return {"out": out, "failures": failures, "stats": report["stats"], "log": log}


def _compose(run, host):
    return yaml.safe_load((run["out"] / host / "opt/glassbox/vllm/compose.yaml").read_text())


def _env(run, host):
    path = run["out"] / host / "opt/glassbox/vllm/vllm.env"
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines), path


def _connection(run, host):
    return json.loads((run["out"] / host / "connection.json").read_text())


def _arg(cmd, flag):
    return cmd[cmd.index(flag) + 1]


@pytest.mark.parametrize("host", sorted(GOOD))
def test_good_inventories_render(run, host):
    assert host not in run["failures"], run["failures"].get(host)
    assert run["stats"][host]["failures"] == 0
    compose = _compose(run, host)
    assert compose["name"] == "vllm"
    for svc in compose["services"].values():
        image, tag = svc["image"].rsplit(":", 1)
        assert image in {"vllm/vllm-openai", "vllm/vllm-openai-cpu"}
        assert tag.startswith("v0.")
        assert "latest" not in tag
        assert not [a for a in svc["command"] if a.startswith("--api-key")]
        assert svc["healthcheck"]["test"][0] == "CMD"
        assert "/health" in svc["healthcheck"]["test"][-1]
        assert "hf_cache:/root/.cache/huggingface" in svc["volumes"]
        assert "compile_cache:/root/.cache/vllm" in svc["volumes"]


@pytest.mark.parametrize("host", sorted(GOOD))
def test_secrets_stay_in_the_env_file(run, host):
    env, path = _env(run, host)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    key = env["VLLM_API_KEY"]
    assert key
    text = (run["out"] / host / "opt/glassbox/vllm/compose.yaml").read_text()
    assert key not in text
    secrets = json.loads((run["out"] / host / "etc/secrets.json").read_text())
    assert secrets["api_key"] == key
    assert oct((run["out"] / host / "etc/secrets.json").stat().st_mode & 0o777) == "0o600"


def test_default_is_one_small_model_on_the_cpu_image(run):
    compose = _compose(run, "cpu_default")
    assert list(compose["services"]) == ["vllm-qwen2-5-0-5b-instruct"]
    svc = compose["services"]["vllm-qwen2-5-0-5b-instruct"]
    assert svc["image"] == CPU_IMAGE
    assert "deploy" not in svc
    assert "ipc" not in svc
    assert svc["environment"] == {"VLLM_CPU_KVCACHE_SPACE": "4"}
    assert svc["ports"] == ["0.0.0.0:8000:8000"]
    cmd = svc["command"]
    assert cmd[0] == "Qwen/Qwen2.5-0.5B-Instruct"  # positional: the entrypoint is `vllm serve`
    assert "--model" not in cmd
    assert _arg(cmd, "--served-model-name") == "qwen2.5-0.5b-instruct"
    assert _arg(cmd, "--max-model-len") == "4096"
    assert "--gpu-memory-utilization" not in cmd
    env, _ = _env(run, "cpu_default")
    assert set(env) == {"VLLM_API_KEY"}  # no HF token given: none written, not even empty
    assert env["VLLM_API_KEY"].startswith("sk-vllm-")
    assert len(env["VLLM_API_KEY"]) == len("sk-vllm-") + 48
    assert _connection(run, "cpu_default") == {
        "base_url": "http://cpu_default:8000/v1",
        "api_key": env["VLLM_API_KEY"],
        "models": ["qwen2.5-0.5b-instruct"],
        "endpoints": [{"model": "qwen2.5-0.5b-instruct", "base_url": "http://cpu_default:8000/v1"}],
    }


def test_gpu_host_gets_gpu_image_and_one_gpu(run):
    svc = _compose(run, "gpu_auto")["services"]["vllm-qwen2-5-0-5b-instruct"]
    assert svc["image"] == GPU_IMAGE
    assert svc["ipc"] == "host"
    assert svc["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
    ]
    assert "environment" not in svc
    assert _arg(svc["command"], "--gpu-memory-utilization") == "0.9"
    assert _arg(svc["command"], "--tensor-parallel-size") == "1"


def test_forced_gpu_with_count_and_shm_size(run):
    compose = _compose(run, "gpu_forced")
    svc = compose["services"]["vllm-qwen-qwen2-5-7b-instruct"]
    assert svc["image"] == GPU_IMAGE
    assert svc["deploy"]["resources"]["reservations"]["devices"][0]["count"] == 2
    assert svc["shm_size"] == "16g"
    assert "ipc" not in svc
    assert _arg(svc["command"], "--tensor-parallel-size") == "2"
    assert svc["command"][0] == "Qwen/Qwen2.5-7B-Instruct"
    assert _arg(svc["command"], "--served-model-name") == "Qwen/Qwen2.5-7B-Instruct"
    assert "--max-model-len" not in svc["command"]
    assert svc["ports"] == ["0.0.0.0:9000:8000"]
    conn = _connection(run, "gpu_forced")
    assert conn["base_url"] == "http://llm.example.internal:9000/v1"
    assert conn["models"] == ["Qwen/Qwen2.5-7B-Instruct"]


def test_cpu_image_follows_the_architecture(run):
    svc = _compose(run, "cpu_aarch64")["services"]["vllm-qwen2-5-0-5b-instruct"]
    assert svc["image"] == CPU_IMAGE_ARM
    services = _compose(run, "gpu_aarch64_with_cpu_model")["services"]
    assert services["vllm-qwen-a"]["image"] == GPU_IMAGE  # multi-arch tag, no suffix
    assert services["vllm-qwen-b"]["image"] == CPU_IMAGE_ARM


def test_two_gpu_models_and_a_cpu_one(run):
    services = _compose(run, "two_models")["services"]
    assert list(services) == ["vllm-big", "vllm-small", "vllm-cpu-small"]
    big, small, cpu = services["vllm-big"], services["vllm-small"], services["vllm-cpu-small"]
    devices = [s["deploy"]["resources"]["reservations"]["devices"][0] for s in (big, small)]
    assert [d["device_ids"] for d in devices] == [["0"], ["1"]]
    assert all(d["driver"] == "nvidia" and d["capabilities"] == ["gpu"] for d in devices)
    assert "count" not in devices[0]
    assert "deploy" not in cpu
    assert cpu["image"] == CPU_IMAGE
    assert [s["ports"][0] for s in (big, small, cpu)] == [
        "10.0.0.5:8000:8000",
        "10.0.0.5:8001:8000",
        "10.0.0.5:8002:8000",
    ]
    assert big["command"][-3:] == ["--enable-prefix-caching", "--max-num-seqs", "64"]
    assert _arg(big["command"], "--dtype") == "bfloat16"
    assert _arg(small["command"], "--gpu-memory-utilization") == "0.5"
    env, _ = _env(run, "two_models")
    assert env == {"VLLM_API_KEY": "sk-given-by-vault", "HF_TOKEN": "hf_test_token_value"}
    text = (run["out"] / "two_models/opt/glassbox/vllm/compose.yaml").read_text()
    assert "hf_test_token_value" not in text
    assert "sk-given-by-vault" not in text
    conn = _connection(run, "two_models")
    assert conn["base_url"] == "http://two_models:8000/v1"
    assert conn["api_key"] == "sk-given-by-vault"
    assert conn["models"] == ["big", "small", "cpu-small"]


def test_secrets_never_in_the_log(run):
    assert "VLLM_API_KEY" not in run["log"]
    for host in GOOD:
        key = _env(run, host)[0]["VLLM_API_KEY"]
        assert key not in run["log"], f"the API key of {host} appears in the ansible output"
    assert "hf_test_token_value" not in run["log"]


@pytest.mark.parametrize("host", sorted(BAD))
def test_bad_input_fails_naming_the_variable(run, host):
    assert host in run["failures"], f"{host} was accepted"
    assert not (run["out"] / host / "opt/glassbox/vllm/compose.yaml").exists()
    message = run["failures"][host]
    for word in BAD[host][1]:
        assert word in message, f"{word!r} not in {message}"


def test_prices_reach_the_connection_fact_per_served_model(run):
    """The langfuse_models role reads each model's price from vllm_connection.endpoints."""
    endpoints = _connection(run, "priced")["endpoints"]
    assert endpoints == [
        {
            "model": "a",
            "base_url": "http://priced:8000/v1",
            "price": {"input_per_million": 0.2, "output_per_million": "0.6"},
        },
        {
            "model": "b",
            "base_url": "http://priced:8001/v1",
            "price": {"hourly_cost": 2.88, "tokens_per_second": 800},
        },
        {"model": "c", "base_url": "http://priced:8002/v1"},
    ]


def _site(run, host, name):
    return run["out"] / host / "caddy" / "sites.d" / f"{name}.caddy"


def test_tls_publishes_on_loopback_and_the_proxy_takes_the_port(run):
    svc = _compose(run, "tls-default")["services"]["vllm-qwen2-5-0-5b-instruct"]
    assert svc["ports"] == ["127.0.0.1:18000:8000"]
    key = _env(run, "tls-default")[0]["VLLM_API_KEY"]
    site = _site(run, "tls-default", "vllm-qwen2-5-0-5b-instruct")
    text = site.read_text()
    assert "tls-default:8000 {" in text
    assert "reverse_proxy 127.0.0.1:18000" in text
    assert f'header Authorization "Bearer {key}"' in text
    assert "path /v1/* /health" in text
    assert "remote_ip 127.0.0.1/32 ::1/128" in text
    assert "respond 401" in text
    assert site.stat().st_mode & 0o777 == 0o640
    conn = _connection(run, "tls-default")
    assert conn["base_url"] == "https://tls-default:8000/v1"
    assert conn["endpoints"] == [
        {"model": "qwen2.5-0.5b-instruct", "base_url": "https://tls-default:8000/v1"}
    ]


def test_tls_backend_ports_follow_the_offset(run):
    services = _compose(run, "tls-two")["services"]
    assert [s["ports"] for s in services.values()] == [
        ["127.0.0.1:28000:8000"],
        ["127.0.0.1:28443:8000"],
    ]
    names = sorted(p.name for p in (run["out"] / "tls-two" / "caddy" / "sites.d").iterdir())
    assert names == ["vllm-a.caddy", "vllm-b.caddy"]
    text = _site(run, "tls-two", "vllm-b").read_text()
    assert "tls-two:8443 {" in text
    assert "reverse_proxy 127.0.0.1:28443" in text
    assert "remote_ip 10.1.0.0/16" in text
    assert [e["base_url"] for e in _connection(run, "tls-two")["endpoints"]] == [
        "https://tls-two:8000/v1",
        "https://tls-two:8443/v1",
    ]


def test_without_tls_no_proxy_site_is_written(run):
    assert not (run["out"] / "cpu_default" / "caddy").exists()
