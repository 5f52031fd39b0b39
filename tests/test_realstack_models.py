"""Langfuse knows the served models: roles/langfuse_models against the real Langfuse 4.16.0.

The real playbook (playbooks/langfuse_models.yml, run by tests/ansible_run.play) registers the
stand-in LLM's served model in the real stack the `real_stack` fixture started (tests/conftest.py),
whose env the langfuse role rendered, LLM-connection whitelist included. Then a traced generation
is read back with the cost Langfuse's worker computed from the registered prices.

The tests run in file order: no price, then a price (twice, and in check mode), the traced
generation, a changed price, and an evaluator whose preflight makes Langfuse call the LLM.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ansible_run import PlaybookRun, local_inventory, play
from tests.realstack.build import REPO_ROOT
from tests.realstack.stack import RealStack
from tests.standin.harness import LLM_API_KEY, SERVED_MODEL
from tests.standin.llm_server import LLMServerProcess

pytestmark = pytest.mark.realstack

PROVIDER = f"vllm-{SERVED_MODEL}"
# From the hardware: 1.8 per hour, 50 tokens/s, busy half the paid hours
# -> 1.8e6 / (3600 * 50 * 0.5) = 20 per 1M tokens (plugins/filter/model_prices.py).
HARDWARE_PRICE = {"hourly_cost": 1.8, "tokens_per_second": 50, "utilisation": 0.5}
HARDWARE_PER_TOKEN = {"input": 2e-5, "output": 2e-5}
DIRECT_PRICE = {"input_per_million": 2, "output_per_million": 4}


class Registry:
    """The stack's app env values, the Langfuse API, and runs of the real playbook."""

    def __init__(self, stack: RealStack, tmp_path: Path) -> None:
        assert stack.app_env_file is not None
        self.stack, self.tmp_path, self.runs = stack, tmp_path, 0
        self.env = dict(
            line.split("=", 1)
            for line in stack.app_env_file.read_text().splitlines()
            if "=" in line
        )
        self.http = httpx.Client(
            base_url=stack.base_url,
            auth=(self.env["LANGFUSE_PUBLIC_KEY"], self.env["LANGFUSE_SECRET_KEY"]),
            timeout=120,
        )

    def register(
        self,
        price: dict[str, Any] | None,
        *,
        check: bool = False,
        base_url: str = "",
        fails: bool = False,
    ) -> PlaybookRun:
        endpoint = {"model": SERVED_MODEL, "base_url": base_url or self.env["OPENAI_BASE_URL"]}
        if price:
            endpoint["price"] = price
        hosts = {
            "realstack-langfuse": {
                "langfuse_connection": {
                    "base_url": self.env["LANGFUSE_BASE_URL"],
                    "public_key": self.env["LANGFUSE_PUBLIC_KEY"],
                    "secret_key": self.env["LANGFUSE_SECRET_KEY"],
                }
            },
            "realstack-llm": {
                "vllm_connection": {
                    "base_url": self.env["OPENAI_BASE_URL"],
                    "api_key": self.env["OPENAI_API_KEY"],
                    "models": [SERVED_MODEL],
                    "endpoints": [endpoint],
                }
            },
        }
        groups = {"observability": ["realstack-langfuse"], "inference": ["realstack-llm"]}
        self.runs += 1
        run = play(
            self.tmp_path / f"run{self.runs}",
            "playbooks/langfuse_models.yml",
            inventory=local_inventory(hosts, groups=groups),
            check=check,
            diff=check,
            timeout=600,
        )
        assert (run.rc != 0) == fails, run.output[-4000:]
        for secret in (LLM_API_KEY, self.env["LANGFUSE_SECRET_KEY"]):
            assert secret not in run.output, "a key was printed"
        return run

    def own_models(self) -> list[dict[str, Any]]:
        found, page = [], 1
        while True:
            answer = self.http.get("/api/public/models", params={"limit": 100, "page": page})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            found += [m for m in body["data"] if not m["isLangfuseManaged"]]
            if page >= body["meta"]["totalPages"]:
                return [m for m in found if m["modelName"] == SERVED_MODEL]
            page += 1

    def connections(self) -> list[dict[str, Any]]:
        answer = self.http.get("/api/public/llm-connections", params={"limit": 100})
        assert answer.status_code == 200, answer.text
        return [c for c in answer.json()["data"] if c["provider"] == PROVIDER]


@pytest.fixture(scope="module")
def registry(real_stack: RealStack, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return Registry(real_stack, tmp_path_factory.mktemp("langfuse-models"))


def _messages(run: PlaybookRun) -> str:
    return json.dumps(run.report)


def test_without_a_price_no_definition_and_the_run_says_how(registry: Registry) -> None:
    run = registry.register(None)
    text = _messages(run)
    assert f"No price for {SERVED_MODEL}" in text, text[-3000:]
    assert "vllm_models[].price" in text
    assert registry.own_models() == []
    # The LLM connection needs no price: it is written (the whitelist let 127.0.0.1 through).
    assert run.changed("localhost") == 1
    assert len(registry.connections()) == 1


def test_a_priced_model_is_registered_once(registry: Registry) -> None:
    first = registry.register(HARDWARE_PRICE)
    assert first.changed("localhost") == 1, _messages(first)[-3000:]  # the definition
    again = registry.register(HARDWARE_PRICE)
    assert again.changed("localhost") == 0, _messages(again)[-3000:]
    checked = registry.register(HARDWARE_PRICE, check=True)
    assert checked.changed("localhost") == 0, _messages(checked)[-3000:]
    (model,) = registry.own_models()
    assert model["matchPattern"] == f"(?i)^({SERVED_MODEL})$"
    assert model["unit"] == "TOKENS"
    assert model["inputPrice"] == pytest.approx(HARDWARE_PER_TOKEN["input"], rel=1e-9)
    assert model["outputPrice"] == pytest.approx(HARDWARE_PER_TOKEN["output"], rel=1e-9)
    # Cached prompt tokens and reasoning tokens are split off by Langfuse: priced too.
    assert {k: v["price"] for k, v in model["prices"].items()} == pytest.approx(
        {
            "input": HARDWARE_PER_TOKEN["input"],
            "input_cached_tokens": HARDWARE_PER_TOKEN["input"],
            "output": HARDWARE_PER_TOKEN["output"],
            "output_reasoning_tokens": HARDWARE_PER_TOKEN["output"],
        },
        rel=1e-9,
    )


def test_the_llm_connection_points_at_the_served_model(registry: Registry) -> None:
    (connection,) = registry.connections()
    assert connection["adapter"] == "openai"
    assert connection["baseURL"] == registry.env["OPENAI_BASE_URL"]
    assert connection["customModels"] == [SERVED_MODEL]
    assert connection["withDefaultModels"] is False
    assert connection["displaySecretKey"] == "..." + LLM_API_KEY[-4:]


def test_a_traced_generation_costs_its_usage_times_the_registered_prices(
    registry: Registry,
) -> None:
    (model,) = registry.own_models()
    sent = subprocess.run(
        [sys.executable, "-m", "tests.realstack.traced_call", str(registry.stack.app_env_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr
    call = json.loads(sent.stdout.strip().splitlines()[-1])
    generation = _generation(registry, call["trace_id"])
    usage = generation["usageDetails"]
    # The stand-in (llama.cpp) reports cached prompt tokens: Langfuse keeps them apart from
    # `input` (input_cached_tokens), so the prompt's tokens are input plus every input_*.
    prompt = sum(v for k, v in usage.items() if k == "input" or k.startswith("input_"))
    generated = sum(v for k, v in usage.items() if k == "output" or k.startswith("output_"))
    assert (prompt, generated) == (call["prompt_tokens"], call["completion_tokens"]), usage
    price = {k: v["price"] for k, v in model["prices"].items()}
    cost = generation["costDetails"]
    for kind, units in usage.items():
        if kind != "total":
            assert cost[kind] == pytest.approx(units * price[kind], rel=1e-9), (kind, generation)
    want = call["prompt_tokens"] * model["inputPrice"]
    want += call["completion_tokens"] * model["outputPrice"]
    assert generation["totalCost"] == pytest.approx(want, rel=1e-9), generation
    assert generation["modelId"] == model["id"], generation
    print(
        f"\ncost of {call['prompt_tokens']} + {call['completion_tokens']} tokens: "
        f"{generation['totalCost']} (trace {call['trace_id']})"
    )


def _generation(registry: Registry, trace_id: str, deadline_s: float = 120) -> dict[str, Any]:
    """The trace's generation once Langfuse has it, with its usage and cost."""
    deadline = time.monotonic() + deadline_s
    params = {"traceId": trace_id, "fields": "core,basic,usage,model", "limit": 100}
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = registry.http.get("/api/public/v2/observations", params=params)
        if answer.status_code == 200:
            seen = answer.json()["data"]
            found = [o for o in seen if o["type"] == "GENERATION"]
            if found:
                return found[0]
        time.sleep(1)
    pytest.fail(f"no generation of trace {trace_id} readable in {deadline_s} s: {seen}")


def test_a_changed_price_replaces_the_definition(registry: Registry) -> None:
    (before,) = registry.own_models()
    changed = registry.register(DIRECT_PRICE)
    assert changed.changed("localhost") == 2, _messages(changed)[-3000:]  # delete + create
    (after,) = registry.own_models()
    assert after["id"] != before["id"]
    assert after["inputPrice"] == pytest.approx(2e-6, rel=1e-9)
    assert after["outputPrice"] == pytest.approx(4e-6, rel=1e-9)
    assert registry.register(DIRECT_PRICE).changed("localhost") == 0
    assert len(registry.connections()) == 1


def test_a_private_address_outside_the_whitelist_is_refused_by_langfuse(registry: Registry) -> None:
    """The whitelist is the inference hosts, nothing wider: another private address is refused
    by Langfuse itself, and the role says so with Langfuse's message, never the key."""
    run = registry.register(DIRECT_PRICE, base_url="http://10.255.255.1:8000/v1", fails=True)
    failures = " ".join(run.failures("localhost"))
    assert "Blocked IP address" in failures, failures
    assert "langfuse_llm_connection_hosts" in failures, failures
    (connection,) = registry.connections()
    assert connection["baseURL"] == registry.env["OPENAI_BASE_URL"]


def _evaluator(provider: str) -> dict[str, Any]:
    return {
        "name": f"glassbox-judge-{provider}",
        "type": "llm_as_judge",
        "prompt": "Rate how helpful this answer is from 0 to 1: {{output}}",
        "outputDefinition": {
            "dataType": "NUMERIC",
            "reasoning": {"description": "One short sentence."},
            "score": {"description": "A number from 0 to 1."},
        },
        "modelConfig": {"provider": provider, "model": SERVED_MODEL},
    }


def _gate_lines(llm: LLMServerProcess) -> list[str]:
    """The stand-in LLM's one line per relayed completion request (tests/standin/llm_server.py)."""
    text = llm.log_path.read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if line.startswith("gate: ")]


def test_an_evaluator_on_the_connection_makes_langfuse_call_the_llm(
    registry: Registry, standin_llm: LLMServerProcess
) -> None:
    """Creating an LLM-as-a-judge evaluator runs Langfuse's preflight, a structured-output call
    of the chosen model through the LLM connection (web/src/features/evals/server/
    evaluator-preflight.ts -> packages/shared/src/server/llm/testModelCall.ts). The stand-in LLM's
    log shows the call arrive: with the connection's key it answers 200; the control, the same
    URL with a wrong key, is answered 401 by the LLM and Langfuse refuses the evaluator.

    Whether the 135M stand-in model's sampled text fits the judge's schema is chance (the public
    API sends no sampling parameters): Langfuse then creates the evaluator (200) or says
    "No output generated". Either way the call went through the connection and the LLM answered
    200; the test says which happened."""
    wrong = {
        "provider": "glassbox-wrong-key",
        "adapter": "openai",
        "secretKey": "sk-vllm-not-the-key",
        "baseURL": registry.env["OPENAI_BASE_URL"],
        "customModels": [SERVED_MODEL],
        "withDefaultModels": False,
    }
    put = registry.http.put("/api/public/llm-connections", json=wrong)
    assert put.status_code in (200, 201), put.text
    seen = len(_gate_lines(standin_llm))
    refused = registry.http.post(
        "/api/public/unstable/evaluators", json=_evaluator("glassbox-wrong-key"), timeout=600
    )
    assert refused.status_code >= 400, refused.text[:2000]
    assert "not valid" in refused.text, refused.text[:2000]
    calls = _gate_lines(standin_llm)[seen:]
    assert any(line.endswith("-> 401") for line in calls), f"no call reached the LLM: {calls}"

    seen = len(_gate_lines(standin_llm))
    started = time.monotonic()
    answer = registry.http.post(
        "/api/public/unstable/evaluators", json=_evaluator(PROVIDER), timeout=600
    )
    took = time.monotonic() - started
    calls = _gate_lines(standin_llm)[seen:]
    print(f"\nevaluator preflight: HTTP {answer.status_code} in {took:.1f} s; LLM calls {calls}")
    assert calls, "Langfuse did not call the LLM through the connection"
    assert all(line.endswith("-> 200") for line in calls), calls
    if answer.status_code == 200:
        assert answer.json()["modelConfig"] == {"provider": PROVIDER, "model": SERVED_MODEL}
    else:  # the model answered, its text did not fit the schema: not a connection problem
        assert "evaluator_preflight_failed" in answer.text, answer.text[:2000]
        assert "No output generated" in answer.text, answer.text[:2000]
