"""The vLLM model plan (roles/vllm/filter_plugins/vllm_plan.py) as plain Python: milliseconds."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.unit import REPO, load_plugin

plan = load_plugin("roles/vllm/filter_plugins/vllm_plan.py")

DEFAULTS = yaml.safe_load((REPO / "roles" / "vllm" / "vars" / "main.yml").read_text())[
    "__vllm_model_defaults"
]
HOST = {
    "accelerator": "auto",
    "gpu_host": False,
    "image_gpu": "vllm/vllm-openai:v0.31.0",
    "image_cpu": "vllm/vllm-openai-cpu:v0.31.0-x86_64",
    "cpu_kvcache_space": 4,
    "container_port": 8000,
}
ARCH = {
    "arch": "x86_64",
    "image_cpu_by_arch": {
        "x86_64": HOST["image_cpu"],
        "aarch64": "vllm/vllm-openai-cpu:v0.31.0-arm64",
    },
    "arch_tag_words": {"x86_64": ["x86_64", "amd64"], "aarch64": ["aarch64", "arm64"]},
}


def resolve(models, **host):
    return plan.resolve_models(models, DEFAULTS, {**HOST, **host})


def problems(models, gpu_total=0, arch="x86_64", **host):
    settings = {**HOST, **ARCH, **host, "arch": arch, "state": "started", "gpu_total": gpu_total}
    return plan.problems(resolve(models, **host), settings)


def test_cpu_host_gets_the_cpu_image_and_a_cpu_command_line():
    (m,) = resolve([{"model": " Qwen/Qwen2.5-0.5B-Instruct ", "max_model_len": 4096}])
    assert m["accelerator"] == "cpu"
    assert m["image"] == HOST["image_cpu"]
    assert m["served_name"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert m["service"] == "vllm-qwen-qwen2-5-0-5b-instruct"
    assert m["command"] == [
        "Qwen/Qwen2.5-0.5B-Instruct",
        "--served-model-name",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "--host",
        "0.0.0.0",  # noqa: S104 - the in-container listen address the role renders
        "--port",
        "8000",
        "--max-model-len",
        "4096",
        "--dtype",
        "auto",
    ]
    assert m["cpu_kvcache_space"] == 4


def test_gpu_host_gets_gpu_flags_and_the_model_keeps_its_own_kv_space():
    (m,) = resolve([{"model": "m", "served_name": "x", "cpu_kvcache_space": 9}], gpu_host=True)
    assert m["accelerator"] == "gpu"
    assert m["image"] == HOST["image_gpu"]
    assert m["command"][-4:] == ["--gpu-memory-utilization", "0.9", "--tensor-parallel-size", "1"]
    assert m["cpu_kvcache_space"] == 9


@pytest.mark.parametrize(
    ("role_wide", "per_model", "expected"),
    [("cpu", "auto", "cpu"), ("gpu", "auto", "gpu"), ("auto", "cpu", "cpu"), ("cpu", "gpu", "gpu")],
)
def test_accelerator_precedence(role_wide, per_model, expected):
    (m,) = resolve([{"model": "m", "accelerator": per_model}], accelerator=role_wide, gpu_host=True)
    assert m["accelerator"] == expected


def test_extra_args_and_device_ids_become_strings():
    (m,) = resolve([{"model": "m", "extra_args": ["--seed", 7], "device_ids": [0, 1]}])
    assert m["command"][-2:] == ["--seed", "7"]
    assert m["device_ids"] == ["0", "1"]


def test_a_valid_default_inventory_has_no_problems():
    models = yaml.safe_load((REPO / "roles" / "vllm" / "defaults" / "main.yml").read_text())[
        "vllm_models"
    ]
    assert problems(models) == []


@pytest.mark.parametrize(
    ("models", "gpu_total", "words"),
    [
        ([], 0, ["vllm_models is empty"]),
        ([{"model": " "}], 0, ["vllm_models[0].model is empty"]),
        ([{"model": "a", "port": 0}], 0, ["vllm_models[0].port is 0: allowed 1-65535"]),
        (
            [{"model": "a"}, {"model": "b"}],
            0,
            ["vllm_models[1].port 8000 is already used by vllm_models[0]"],
        ),
        (
            [{"model": "a", "port": 1}, {"model": "a", "port": 2}],
            0,
            ['vllm_models[1].served_name "a" is also the served name of vllm_models[0]'],
        ),
        (
            [{"model": "a.b", "port": 1}, {"model": "a-b", "port": 2}],
            0,
            ["gives the same container name (vllm-a-b) as vllm_models[0]"],
        ),
        ([{"model": "a", "gpu_memory_utilization": 1.5}], 0, ["gpu_memory_utilization is 1.5"]),
        ([{"model": "a", "tensor_parallel_size": 0}], 0, ["tensor_parallel_size is 0"]),
        (
            [{"model": "a", "extra_args": ["--api-key=x"]}],
            0,
            ["extra_args contains --api-key", "use vllm_api_key"],
        ),
        (
            [{"model": "a", "extra_args": ["--port", "1"]}],
            0,
            ["extra_args contains --port", "use the model key of the same name"],
        ),
    ],
)
def test_problems_name_the_variable(models, gpu_total, words):
    found = " ".join(problems(models, gpu_total=gpu_total))
    for word in words:
        assert word in found, found


@pytest.mark.parametrize(
    ("models", "gpu_total", "words"),
    [
        (
            [{"model": "a", "device_ids": [0], "gpu_count": 1}],
            2,
            ["sets both device_ids and gpu_count"],
        ),
        ([{"model": "a", "device_ids": [0, 0]}], 2, ["lists a GPU twice"]),
        (
            [{"model": "a", "tensor_parallel_size": 2, "gpu_count": 1}],
            2,
            ["tensor_parallel_size 2 is larger than the 1 GPU(s) assigned to it (gpu_count)"],
        ),
        ([{"model": "a", "tensor_parallel_size": 4}], 2, ["preflight found on this host"]),
        (
            [{"model": "a", "port": 1}, {"model": "b", "port": 2, "device_ids": [1]}],
            2,
            ["vllm_models[0] has no device_ids while 2 models run on the GPU image"],
        ),
        ([{"model": "a", "device_ids": [3]}], 2, ["names GPU 3 but preflight found 2 GPU(s)"]),
        (
            [
                {"model": "a", "port": 1, "device_ids": [0], "gpu_memory_utilization": 0.6},
                {"model": "b", "port": 2, "device_ids": [0], "gpu_memory_utilization": 0.5},
            ],
            2,
            ["GPU 0 is shared by models whose vllm_models[].gpu_memory_utilization add up to 1.10"],
        ),
    ],
)
def test_gpu_problems(models, gpu_total, words):
    found = " ".join(problems(models, gpu_total=gpu_total, gpu_host=True))
    for word in words:
        assert word in found, found


def test_two_gpu_models_on_distinct_devices_are_fine():
    models = [
        {"model": "a", "port": 1, "device_ids": [0], "gpu_memory_utilization": 0.5},
        {"model": "b", "port": 2, "device_ids": [1], "gpu_memory_utilization": 0.9},
    ]
    assert problems(models, gpu_total=2, gpu_host=True) == []


@pytest.mark.parametrize("image", ["vllm/vllm-openai", "vllm/vllm-openai:latest", "x:latest-cpu"])
def test_unpinned_images_are_refused(image):
    found = problems([{"model": "a"}], image_gpu=image)
    assert found == [
        f'vllm_image_gpu is "{image}": pin a version tag (e.g. v0.31.0), never latest or no tag.'
    ]


def test_a_registry_port_is_not_a_tag():
    assert problems([{"model": "a"}], image_cpu="reg:5000/vllm:v1") == []


def test_an_x86_cpu_image_on_an_arm_host_is_refused():
    found = problems([{"model": "a"}], arch="aarch64")
    assert found == [
        'vllm_image_cpu is "vllm/vllm-openai-cpu:v0.31.0-x86_64", an x86_64 build, but this host '
        "is aarch64: leave vllm_image_cpu empty to get vllm/vllm-openai-cpu:v0.31.0-arm64."
    ]


def test_an_arm_gpu_tag_on_an_x86_host_is_refused_only_when_a_gpu_model_uses_it():
    arm_gpu = "vllm/vllm-openai:v0.31.0-aarch64-cu129"
    assert problems([{"model": "a"}], image_gpu=arm_gpu) == []  # no GPU model
    found = problems(
        [{"model": "a"}], image_gpu=arm_gpu, accelerator="gpu", gpu_host=True, gpu_total=1
    )
    assert found == [
        f'vllm_image_gpu is "{arm_gpu}", an aarch64 build, but this host is x86_64: use the '
        "multi-arch tag without the architecture suffix (e.g. v0.31.0)."
    ]


@pytest.mark.parametrize(
    ("arch", "words"), [("", "architecture of this host is unknown"), ("riscv64", '"riscv64"')]
)
def test_no_cpu_image_for_the_architecture(arch, words):
    found = problems([{"model": "a"}], arch=arch, image_cpu="")
    assert len(found) == 1
    assert words in found[0]
    assert "vllm_image_cpu" in found[0]


def test_a_kv_cache_of_zero_everywhere_is_refused():
    found = problems([{"model": "a", "cpu_kvcache_space": -1}], cpu_kvcache_space=0)
    assert found == [
        "vllm_models[0]: gpu_count and max_model_len must be 0 or more, cpu_kvcache_space "
        "(or vllm_cpu_kvcache_space) 1 or more."
    ]


def test_probes_match_only_the_served_name_and_carry_the_key():
    models = resolve([{"model": "org/m", "served_name": "m.1", "port": 8001}])
    (probe,) = plan.probes(models, {"probe_host": "127.0.0.1"}, "sk-vllm-x")
    assert probe["url"] == "http://127.0.0.1:8001/v1/models"
    assert probe["headers"] == {"Authorization": "Bearer sk-vllm-x"}
    assert probe["secret"] is True
    listed = '{"object":"list","data":[{"id": "m.1","object":"model"}]}'
    assert re.search(probe["body_regex"], listed)
    assert not re.search(probe["body_regex"], listed.replace("m.1", "mx1"))


def test_endpoints_per_model():
    models = resolve([{"model": "a", "port": 1}, {"model": "b", "port": 2}])
    assert plan.endpoints(models, {"public_host": "gpu1"}) == [
        {"model": "a", "base_url": "http://gpu1:1/v1"},
        {"model": "b", "base_url": "http://gpu1:2/v1"},
    ]


@pytest.mark.parametrize("gpu_host", ["True", "true", True])
def test_gpu_host_given_as_text_or_bool(gpu_host):
    (m,) = resolve([{"model": "a"}], gpu_host=gpu_host)
    assert m["accelerator"] == "gpu"


def test_gpu_host_false_as_text_is_false():
    (m,) = resolve([{"model": "a"}], gpu_host="False")
    assert m["accelerator"] == "cpu"


TLS = {"tls": True, "backend_port_offset": 10000, "public_host": "gpu-1.example.org"}


def test_tls_moves_vllm_to_loopback_and_the_backend_port():
    host = {**HOST, **TLS}
    (m,) = resolve([{"model": "A", "port": 8000}], **TLS)
    assert m["backend_port"] == 18000
    assert plan.bind_address(host) == "127.0.0.1"
    assert plan.bind_address({**HOST, "bind_address": ""}) == "0.0.0.0"  # noqa: S104
    assert plan.endpoints([m], host)[0]["base_url"] == "https://gpu-1.example.org:8000/v1"
    (probe,) = plan.probes([m], {**host, "probe_host": "10.0.0.5"}, "k")
    assert probe["url"] == "http://127.0.0.1:18000/v1/models"


def test_without_tls_nothing_moves():
    (m,) = resolve([{"model": "A", "port": 8000}], backend_port_offset=10000)
    assert m["backend_port"] == 8000
    host = {**HOST, "public_host": "h", "probe_host": "127.0.0.1", "bind_address": "10.0.0.5"}
    assert plan.bind_address(host) == "10.0.0.5"
    assert plan.endpoints([m], host)[0]["base_url"] == "http://h:8000/v1"
    assert problems([{"model": "A", "port": 60000}], backend_port_offset=10000) == []


@pytest.mark.parametrize(
    ("models", "extra", "words"),
    [
        ([{"model": "A", "port": 60000}], {}, ["vllm_models[0].port 60000", "70000"]),
        (
            [{"model": "A", "port": 8000}, {"model": "B", "port": 18000, "served_name": "b"}],
            {},
            ["vllm_models[0]", "18000", "vllm_models[1]"],
        ),
        ([{"model": "A", "port": 8000}], {"bind_address": "0.0.0.0"}, ["vllm_bind_address"]),  # noqa: S104
        ([{"model": "A", "port": 8000}], {"api_key": "sk *"}, ["vllm_api_key"]),
    ],
)
def test_tls_problems_name_the_variable(models, extra, words):
    found = " ".join(problems(models, **TLS, **extra))
    for word in words:
        assert word in found
