"""The fast loop's one playbook run: the service roles' render entry points on one local host
prove that the roles call the Python filters the unit tests check (vllm_plan, glassbox, model
prices) and that compose_project and glassbox_secrets are wired in. The full matrices of
inventories are the contract tests of the roles tier (test_vllm_contract, test_langfuse_contract).
"""

from __future__ import annotations

import json

import yaml

from tests.ansible_run import local_inventory, play
from tests.langfuse_harness import RENDER_TASKS

PLAYS = [
    {
        "name": "Render vLLM and Langfuse on one host",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Fake the architecture fact",
                "ansible.builtin.set_fact": {"architecture": "x86_64", "cacheable": True},
            },
            {
                "name": "Render vLLM",
                "ansible.builtin.include_role": {"name": "vllm", "tasks_from": "render"},
            },
            *RENDER_TASKS,
            {
                "name": "Keep the published facts",
                "ansible.builtin.copy": {
                    "content": "{{ {'vllm': vllm_connection, 'langfuse': langfuse_connection}"
                    " | to_json }}",
                    "dest": "{{ out }}/facts.json",
                    "mode": "0600",
                },
                "no_log": True,
            },
        ],
    }
]


def test_one_host_renders_both_projects_and_publishes_their_connections(tmp_path):
    out = tmp_path / "out"
    host = {
        "out": str(out),
        # Plain HTTP: the proxy's sites need caddy (tests/test_*_contract.py cover TLS).
        "glassbox_tls": False,
        "preflight_gpu_present": False,
        "preflight_gpu_count": 0,
        "vllm_project_dir": str(out / "vllm"),
        "vllm_secrets_file": str(out / "etc" / "vllm.json"),
        "vllm_models": [
            {
                "model": "Qwen/Qwen2.5-0.5B-Instruct",
                "port": 8000,
                "price": {"input_per_million": 0.1, "output_per_million": 0.3},
            }
        ],
        "langfuse_project_dir": str(out / "langfuse"),
        "langfuse_secrets_file": str(out / "etc" / "langfuse.json"),
    }
    run = play(tmp_path, PLAYS, inventory=local_inventory({"h": host}))
    assert run.rc == 0, run.failures("h") or run.output

    vllm = yaml.safe_load((out / "vllm" / "compose.yaml").read_text())
    (service,) = vllm["services"].values()
    assert service["image"].startswith("vllm/vllm-openai-cpu:")
    langfuse = yaml.safe_load((out / "langfuse" / "compose.yaml").read_text())
    assert {"langfuse-web", "langfuse-worker"} <= set(langfuse["services"])
    assert (out / "langfuse" / "env" / "web.env").stat().st_mode & 0o777 == 0o600

    facts = json.loads((out / "facts.json").read_text())
    assert facts["vllm"]["models"] == ["Qwen/Qwen2.5-0.5B-Instruct"]
    assert facts["vllm"]["endpoints"][0]["price"]
    assert facts["langfuse"]["public_key"].startswith("pk-lf-")
    for value in (facts["vllm"]["api_key"], facts["langfuse"]["secret_key"]):
        assert value not in run.output, "a secret reached the playbook output"
