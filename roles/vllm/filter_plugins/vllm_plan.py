"""vLLM model plan: resolve each inventory model and list the rules across variables it breaks.

Plain Python so the logic is unit-tested in milliseconds (tests/unit/test_vllm_plan.py); the role
calls it as the filters `vllm_plan_models` and `vllm_plan_problems`.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Engine arguments the role sets itself; extra_args may not repeat them (and never --api-key).
RESERVED_ARGS = (
    "--api-key",
    "--model",
    "--served-model-name",
    "--host",
    "--port",
    "--max-model-len",
    "--dtype",
    "--gpu-memory-utilization",
    "--tensor-parallel-size",
)


def _int(value: Any, default: int = 0) -> int:
    """Jinja's `int`: a number or numeric string, else the default."""
    try:
        return int(float(value)) if isinstance(value, str) and "." in value else int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _truthy(value: Any) -> bool:
    """A boolean that may arrive as text from a template."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def _text(value: Any) -> str:
    """Jinja's `string` for the values the role writes on a command line (no 1.0 -> '1')."""
    return str(value)


def service_name(served: str) -> str:
    """Compose service (and container) name of a served model: vllm-<slug>."""
    slug = re.sub(r"[^a-z0-9]+", "-", served.lower()).strip("-")
    return f"vllm-{slug}"


def _tls(host: dict[str, Any]) -> bool:
    return _truthy(host.get("tls", False))


def bind_address(host: dict[str, Any]) -> str:
    """Host address the model ports are published on: loopback behind the TLS proxy, else
    vllm_bind_address (empty = every interface)."""
    if _tls(host):
        return "127.0.0.1"
    return str(host.get("bind_address") or "0.0.0.0")  # noqa: S104 - the documented default


def resolve_models(
    models: list[dict[str, Any]], defaults: dict[str, Any], host: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every model with its defaults filled in, its accelerator resolved, its service name, image
    and full engine command line (arguments to the images' `vllm serve` entrypoint: the model id
    first; `--model` is deprecated upstream).

    `host` carries the role-wide settings: accelerator, gpu_host, image_gpu, image_cpu,
    cpu_kvcache_space, container_port.
    """
    accelerator = host["accelerator"]
    container_port = host["container_port"]
    resolved = []
    for model in models:
        r = {**defaults, **model}
        accel = r["accelerator"]
        if accel == "auto":
            gpu_host = _truthy(host["gpu_host"])
            accel = accelerator if accelerator != "auto" else ("gpu" if gpu_host else "cpu")
        served = str(r["served_name"]).strip() or str(r["model"]).strip()
        command = [
            str(r["model"]).strip(),
            "--served-model-name",
            served,
            "--host",
            "0.0.0.0",  # noqa: S104 - inside the container; the host port binding decides exposure
            "--port",
            str(container_port),
        ]
        if _int(r["max_model_len"]) > 0:
            command += ["--max-model-len", _text(r["max_model_len"])]
        command += ["--dtype", _text(r["dtype"])]
        if accel == "gpu":
            command += [
                "--gpu-memory-utilization",
                _text(r["gpu_memory_utilization"]),
                "--tensor-parallel-size",
                _text(r["tensor_parallel_size"]),
            ]
        command += [_text(arg) for arg in r["extra_args"]]
        own_kv = _int(r["cpu_kvcache_space"]) > 0
        kv = r["cpu_kvcache_space"] if own_kv else host["cpu_kvcache_space"]
        public_port = _int(r["port"])
        backend = (
            public_port + _int(host.get("backend_port_offset", 0)) if _tls(host) else public_port
        )
        resolved.append(
            {
                **r,
                "backend_port": backend,
                "served_name": served,
                "accelerator": accel,
                "service": service_name(served),
                "image": host["image_gpu"] if accel == "gpu" else host["image_cpu"],
                "cpu_kvcache_space": kv,
                "device_ids": [_text(d) for d in r["device_ids"]],
                "command": command,
            }
        )
    return resolved


def _image_tag(image: str) -> str:
    last = image.rsplit("/", maxsplit=1)[-1]
    return last.split(":")[1] if ":" in last else ""


def _image_problems(var: str, image: str, used: bool, host: dict[str, Any]) -> list[str]:
    """An image must carry a version tag, and a tag that names an architecture must name the
    host's (upstream tags per-arch builds v0.31.0-x86_64, -arm64, -aarch64-cu129)."""
    out = []
    arch = host.get("arch", "")
    own = host.get("image_cpu_by_arch", {}).get(arch, "the image for this architecture")
    tag = _image_tag(image)
    if tag in ("", "latest") or tag.startswith("latest-"):
        out.append(f'{var} is "{image}": pin a version tag (e.g. v0.31.0), never latest or no tag.')
    if used and arch:
        for other, words in host.get("arch_tag_words", {}).items():
            if other != arch and set(tag.split("-")) & set(words):
                advice = (
                    f"leave vllm_image_cpu empty to get {own}"
                    if var == "vllm_image_cpu"
                    else "use the multi-arch tag without the architecture suffix (e.g. v0.31.0)"
                )
                out.append(
                    f'{var} is "{image}", an {other} build, but this host is {arch}: {advice}.'
                )
    return out


def _cpu_image_problems(cpu_models: int, image_cpu: str, arch: str, known: list[str]) -> list[str]:
    if not cpu_models or image_cpu:
        return []
    if not arch:
        return [
            "vllm_image_cpu is empty and the CPU architecture of this host is unknown "
            "(ansible_facts architecture was not gathered): gather facts in the play, or set "
            "vllm_image_cpu."
        ]
    names = ", ".join(known)
    return [
        "vllm_image_cpu is empty and upstream publishes no CPU image for the architecture "
        f'"{arch}" (the role knows {names}): set vllm_image_cpu to a pinned image that runs '
        "here, or serve the models on the GPU image."
    ]


def _gpu_problems(
    m: dict[str, Any], v: str, gpu_models: int, gpu_host: bool, gpu_total: int
) -> list[str]:
    out = []
    ids = m["device_ids"]
    tp = _int(m["tensor_parallel_size"])
    count = _int(m["gpu_count"])
    if ids and count > 0:
        out.append(f"{v} sets both device_ids and gpu_count: choose one.")
    if len(set(ids)) != len(ids):
        out.append(f"{v}.device_ids {','.join(ids)} lists a GPU twice.")
    assigned = len(ids) if ids else (count if count > 0 else tp)
    if tp > assigned:
        source = "device_ids" if ids else "gpu_count"
        out.append(
            f"{v}.tensor_parallel_size {m['tensor_parallel_size']} is larger than the "
            f"{assigned} GPU(s) assigned to it ({source})."
        )
    if gpu_host and (tp > gpu_total or assigned > gpu_total):
        out.append(
            f"{v}.tensor_parallel_size {m['tensor_parallel_size']} (GPUs assigned: {assigned}) "
            f"is larger than the {gpu_total} GPU(s) preflight found on this host "
            "(preflight_gpu_count)."
        )
    if gpu_models > 1 and not ids:
        out.append(
            f"{v} has no device_ids while {gpu_models} models run on the GPU image: give each GPU "
            "model its device_ids so they do not all land on the first GPU(s)."
        )
    for d in ids:
        if gpu_host and re.fullmatch(r"[0-9]+", d) and int(d) >= gpu_total:
            out.append(
                f"{v}.device_ids names GPU {d} but preflight found {gpu_total} GPU(s) "
                "(preflight_gpu_count; indices start at 0)."
            )
    return out


def _model_problems(m: dict[str, Any], v: str) -> list[str]:
    out = []
    if not str(m["model"]).strip():
        out.append(
            f"{v}.model is empty: give a Hugging Face model id such as Qwen/Qwen2.5-0.5B-Instruct."
        )
    share = _float(m["gpu_memory_utilization"])
    if not 0 < share <= 1:
        out.append(
            f"{v}.gpu_memory_utilization is {m['gpu_memory_utilization']}: allowed greater than 0 "
            "and at most 1 (e.g. 0.9)."
        )
    if _int(m["tensor_parallel_size"]) < 1:
        out.append(f"{v}.tensor_parallel_size is {m['tensor_parallel_size']}: allowed 1 or more.")
    if _int(m["gpu_count"]) < 0 or _int(m["max_model_len"]) < 0 or _int(m["cpu_kvcache_space"]) < 1:
        out.append(
            f"{v}: gpu_count and max_model_len must be 0 or more, cpu_kvcache_space "
            "(or vllm_cpu_kvcache_space) 1 or more."
        )
    for arg in m["extra_args"]:
        name = _text(arg).split("=")[0]
        if name in RESERVED_ARGS:
            use = (
                "use vllm_api_key, kept in the env file"
                if _text(arg).startswith("--api-key")
                else "use the model key of the same name"
            )
            out.append(
                f"{v}.extra_args contains {name}: the role sets it ({use}). "
                f"Reserved: {', '.join(RESERVED_ARGS)}."
            )
    return out


# A key the proxy's header matcher compares literally (roles/reverse_proxy: no spaces, quotes,
# braces or '*').
PROXY_KEY = re.compile(r"[A-Za-z0-9._~+/=-]+")


def _tls_problems(models: list[dict[str, Any]], host: dict[str, Any]) -> list[str]:
    """With glassbox_tls the proxy listens on each model's port and vLLM on port + offset, on
    127.0.0.1 only: every backend port must exist and collide with no other port."""
    if not _tls(host):
        return []
    out = []
    bind = str(host.get("bind_address") or "")
    if bind not in ("", "127.0.0.1"):
        out.append(
            f'vllm_bind_address is "{bind}" but glassbox_tls is true: the models publish on '
            "127.0.0.1 only and the TLS proxy listens on the public ports. Leave "
            "vllm_bind_address empty, or set glassbox_tls: false."
        )
    key = str(host.get("api_key") or "")
    if key and not PROXY_KEY.fullmatch(key):
        out.append(
            "vllm_api_key has characters the TLS proxy cannot compare literally (glassbox_tls "
            "is true): allowed A-Z a-z 0-9 and . _ ~ + / = - (no spaces, quotes, braces or *)."
        )
    offset = _int(host.get("backend_port_offset", 0))
    public = {_int(m["port"]): i for i, m in enumerate(models)}
    seen: dict[int, int] = {}
    for index, m in enumerate(models):
        backend = _int(m["port"]) + offset
        v = f"vllm_models[{index}]"
        if not 1 <= backend <= 65535:
            out.append(
                f"{v}.port {m['port']} + vllm_backend_port_offset {offset} = {backend}: the "
                "backend port vLLM listens on behind the proxy must be 1-65535; lower "
                "vllm_backend_port_offset or the port."
            )
        elif backend in public or backend in seen:
            other = public.get(backend, seen.get(backend))
            out.append(
                f"{v}.port {m['port']} + vllm_backend_port_offset {offset} = {backend}, which "
                f"is also a port of vllm_models[{other}]: choose another vllm_backend_port_offset."
            )
        seen[backend] = index
    return out


def problems(models: list[dict[str, Any]], host: dict[str, Any]) -> list[str]:
    """Every rule across variables that argument_specs cannot express, as one list of messages.

    `models` are resolved (resolve_models). `host` carries: state, image_gpu, image_cpu (after
    the per-architecture choice; empty when none), arch (ansible_facts architecture, empty when
    not gathered), image_cpu_by_arch, arch_tag_words, gpu_host, gpu_total.
    """
    out: list[str] = []
    if not models:
        out.append(f"vllm_models is empty: list at least one model (vllm_state {host['state']}).")
    gpu_models = sum(1 for m in models if m["accelerator"] == "gpu")
    cpu_models = sum(1 for m in models if m["accelerator"] == "cpu")
    arch = host.get("arch", "")
    out += _cpu_image_problems(
        cpu_models, host["image_cpu"], arch, list(host.get("image_cpu_by_arch", {}))
    )
    for var, image, used in (
        ("vllm_image_gpu", host["image_gpu"], gpu_models),
        ("vllm_image_cpu", host["image_cpu"], cpu_models),
    ):
        if image:
            out += _image_problems(var, image, bool(used), host)
    gpu_host = _truthy(host["gpu_host"])
    gpu_total = _int(host["gpu_total"])
    out += _tls_problems(models, host)
    ports: dict[int, str] = {}
    names: dict[str, str] = {}
    services: dict[str, str] = {}
    shares: dict[str, float] = {}
    for index, m in enumerate(models):
        v = f"vllm_models[{index}]"
        out += _model_problems(m, v)
        port = _int(m["port"])
        if not 1 <= port <= 65535:
            out.append(f"{v}.port is {m['port']}: allowed 1-65535.")
        elif port in ports:
            out.append(
                f"{v}.port {m['port']} is already used by {ports[port]}: "
                "each model needs its own port."
            )
        ports[port] = v
        if m["served_name"] in names:
            out.append(
                f'{v}.served_name "{m["served_name"]}" is also the served name of '
                f"{names[m['served_name']]}: served names must be unique."
            )
        elif m["service"] in services:
            out.append(
                f'{v}.served_name "{m["served_name"]}" gives the same container name '
                f"({m['service']}) as {services[m['service']]}: choose a more distinct served_name."
            )
        names[m["served_name"]] = v
        services[m["service"]] = v
        if m["accelerator"] == "gpu":
            out += _gpu_problems(m, v, gpu_models, gpu_host, gpu_total)
            for d in m["device_ids"]:
                shares[d] = shares.get(d, 0.0) + _float(m["gpu_memory_utilization"])
    out += [
        f"GPU {d} is shared by models whose vllm_models[].gpu_memory_utilization add up to "
        f"{total:.2f}: the sum per GPU must be at most 1."
        for d, total in shares.items()
        if total > 1.0001
    ]
    return out


def scheme(host: dict[str, Any]) -> str:
    """https behind the TLS proxy, else http."""
    return "https" if _tls(host) else "http"


def endpoints(models: list[dict[str, Any]], host: dict[str, Any]) -> list[dict[str, Any]]:
    """Each served model and the base URL clients use for it, with its `price` when it has one
    (the langfuse_models role registers it in Langfuse; plugins/filter/model_prices.py)."""
    return [
        {
            "model": m["served_name"],
            "base_url": f"{scheme(host)}://{host['public_host']}:{m['port']}/v1",
            **({"price": dict(m["price"])} if m.get("price") else {}),
        }
        for m in models
    ]


def probes(models: list[dict[str, Any]], host: dict[str, Any], api_key: str) -> list[dict]:
    """compose_project readiness probes: /v1/models on each model's published port must list
    its served name (with the API key; vLLM answers HTTP only once the engine is up). Behind
    the TLS proxy the probe asks vLLM itself, on 127.0.0.1 and the backend port."""
    probe_host = "127.0.0.1" if _tls(host) else host["probe_host"]
    return [
        {
            "name": f"{m['served_name']} listed by /v1/models on port {m['backend_port']}",
            "url": f"http://{probe_host}:{m['backend_port']}/v1/models",
            "headers": {"Authorization": f"Bearer {api_key}"},
            "body_regex": '"id"\\s*:\\s*' + re.escape(json.dumps(m["served_name"])),
            "secret": True,
        }
        for m in models
    ]


def _models_filter(models, defaults, host):
    return resolve_models(models, defaults, host)


def _problems_filter(models, host):
    return problems(models, host)


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "vllm_plan_models": _models_filter,
            "vllm_plan_problems": _problems_filter,
            "vllm_plan_endpoints": endpoints,
            "vllm_plan_probes": probes,
            "vllm_plan_bind_address": bind_address,
            "vllm_plan_scheme": scheme,
        }
