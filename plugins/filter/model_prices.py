"""What the served models cost, and what Langfuse must be told about them.

Plain Python, unit-tested in tests/unit/test_model_prices.py. The vllm role checks each model's
`price` with `glassbox_price_problems` (in its validate entry point, before anything changes);
the langfuse_models role turns the served models into Langfuse model definitions and LLM
connections and decides, from what Langfuse already holds, what to create, replace or leave.

A price is given per served model (vllm_models[].price), in one of two ways:

- directly: input_per_million and output_per_million (currency units per 1M tokens);
- from the hardware: hourly_cost (what the host, or the GPUs this model occupies, cost per hour),
  tokens_per_second (prompt plus generated tokens per second the model processes under a load
  like yours, summed over concurrent requests: benchmarks/throughput.py measures it) and
  optionally utilisation (the share of the paid hours the model is busy, in (0, 1]; default 1).
  Every token, prompt or generated, then costs the same:

    price per 1M tokens = hourly_cost * 1_000_000 / (3600 * tokens_per_second * utilisation)

  so that the tokens of one paid hour add up to hourly_cost. (Prompt tokens are cheaper to
  compute than generated ones; give direct prices to charge them differently.)

Langfuse stores prices per unit (here: per token) and computes a generation's cost at ingestion
as usage x price per usage type (input, output); upstream 4.16.0
worker/src/services/IngestionService/index.ts (calculateUsageCosts).
"""

from __future__ import annotations

import math
import re
from typing import Any

DIRECT_KEYS = ("input_per_million", "output_per_million")
DERIVED_KEYS = ("hourly_cost", "tokens_per_second", "utilisation")
PRICE_KEYS = DIRECT_KEYS + DERIVED_KEYS
SECONDS_PER_HOUR = 3600
PER_MILLION = 1_000_000
# Langfuse's adapter for OpenAI-compatible servers (packages/shared/src/server/llm/types.ts:
# LLMAdapter.OpenAI = "openai").
OPENAI_ADAPTER = "openai"
# Usage types a generation of an OpenAI-compatible server can carry, and the price each gets:
# Langfuse splits `prompt_tokens_details` / `completion_tokens_details` into input_<key> /
# output_<key> and lowers input / output by them (packages/shared/src/server/ingestion/types.ts,
# OpenAICompletionUsageSchema), and prices each usage type on its own (calculateUsageCosts). A
# cached prompt token is a prompt token here (the throughput counted it), a reasoning token a
# generated one; vLLM reports them with --enable-prompt-tokens-details, llama.cpp always.
PRICED_USAGE = {
    "input": "input",
    "input_cached_tokens": "input",
    "output": "output",
    "output_reasoning_tokens": "output",
}
# The one pricing tier of a definition (the shape Langfuse's POST /api/public/models takes:
# packages/shared/src/features/model-pricing/validation.ts, PricingTierInputSchema; the default
# tier has priority 0 and no conditions).
DEFAULT_TIER = {"name": "Standard", "isDefault": True, "priority": 0, "conditions": []}
# Relative tolerance when comparing a registered price with the wanted one (Langfuse keeps
# Decimal(65,30) and answers with a JSON number).
PRICE_REL_TOL = 1e-9
# Characters that mean something in a PostgreSQL regular expression (Langfuse matches a
# generation's model name with `model ~ match_pattern`, modelMatch.ts findModelInPostgres).
_REGEX_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def _given(price: dict[str, Any], key: str) -> bool:
    value = price.get(key)
    return value is not None and not (isinstance(value, str) and value.strip() == "")


def _number(value: Any) -> float | None:
    """A finite number, or None (booleans are not numbers here)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numbers(price: dict[str, Any], v: str, out: list[str]) -> dict[str, float]:
    """The given keys that are numbers of 0 or more; a message for each other given key."""
    unknown = sorted(set(price) - set(PRICE_KEYS))
    if unknown:
        out.append(f"{v} has unknown keys {', '.join(unknown)}: allowed {', '.join(PRICE_KEYS)}.")
    numbers: dict[str, float] = {}
    for key in PRICE_KEYS:
        if not _given(price, key):
            continue
        number = _number(price[key])
        if number is None:
            out.append(f"{v}.{key} is {price[key]!r}: it must be a number.")
        elif number < 0:
            out.append(f"{v}.{key} is {price[key]!r}: it must be 0 or more.")
        else:
            numbers[key] = number
    return numbers


def _derived_problems(price: dict[str, Any], numbers: dict[str, float], v: str) -> list[str]:
    out = []
    if not _given(price, "hourly_cost"):
        out.append(
            f"{v} gives tokens_per_second or utilisation but not {v}.hourly_cost: give what the "
            "host or the model's GPUs cost per hour."
        )
    if not _given(price, "tokens_per_second"):
        out.append(
            f"{v}.hourly_cost needs {v}.tokens_per_second (tokens per second under load; "
            "measure it with benchmarks/throughput.py)."
        )
    elif numbers.get("tokens_per_second") == 0:
        out.append(
            f"{v}.tokens_per_second is 0: it must be greater than 0 (a price divides by it)."
        )
    if "utilisation" in numbers and not 0 < numbers["utilisation"] <= 1:
        out.append(
            f"{v}.utilisation is {price['utilisation']!r}: allowed greater than 0 and at most "
            "1 (the share of the paid hours the model is busy)."
        )
    return out


def price_problems(models: list[dict[str, Any]]) -> list[str]:
    """Every problem with the `price` of each vllm_models entry, naming the variable."""
    out: list[str] = []
    for index, model in enumerate(models or []):
        price = model.get("price")
        v = f"vllm_models[{index}].price"
        if price in (None, {}):
            continue
        if not isinstance(price, dict):
            out.append(f"{v} must be a mapping with {', '.join(PRICE_KEYS)} (got {price!r}).")
            continue
        numbers = _numbers(price, v, out)
        direct = [k for k in DIRECT_KEYS if _given(price, k)]
        derived = [k for k in DERIVED_KEYS if _given(price, k)]
        if direct and derived:
            out.append(
                f"{v} mixes a direct price ({', '.join(direct)}) with hardware figures "
                f"({', '.join(derived)}): give either input_per_million and output_per_million, "
                "or hourly_cost and tokens_per_second."
            )
        elif len(direct) == 1:
            missing = next(k for k in DIRECT_KEYS if k not in direct)
            out.append(f"{v} gives {direct[0]} but not {v}.{missing}: give both.")
        elif derived:
            out += _derived_problems(price, numbers, v)
    return out


def per_million(price: dict[str, Any] | None) -> dict[str, float] | None:
    """{'input': x, 'output': y} per 1M tokens, or None when the model has no price.

    Call only on prices price_problems() accepted."""
    if not price:
        return None
    if any(_given(price, k) for k in DIRECT_KEYS):
        return {
            "input": float(price["input_per_million"]),
            "output": float(price["output_per_million"]),
        }
    if not _given(price, "hourly_cost"):
        return None
    hourly = float(price["hourly_cost"])
    share = float(price["utilisation"]) if _given(price, "utilisation") else 1.0
    rate = hourly * PER_MILLION / (SECONDS_PER_HOUR * float(price["tokens_per_second"]) * share)
    return {"input": rate, "output": rate}


def per_token(per_million_price: float) -> float:
    """Langfuse's unit price (per token), to 12 significant digits."""
    return float(f"{per_million_price / PER_MILLION:.12g}")


def match_pattern(served_name: str) -> str:
    """Case-insensitive whole-name match of a served model name, as Langfuse's own definitions
    are written (`(?i)^(gpt-4o)$`), with regex characters escaped."""
    return "(?i)^(" + _REGEX_SPECIAL.sub(r"\\\1", served_name) + ")$"


def model_definitions(endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    """From the served models (vllm_connection.endpoints of every inference host: model,
    base_url, price), the Langfuse model definitions to hold and the served names without a
    price: {'definitions': [POST /api/public/models bodies], 'unpriced': [names]}."""
    definitions: list[dict[str, Any]] = []
    unpriced: list[str] = []
    seen: set[str] = set()
    for endpoint in endpoints or []:
        name = endpoint["model"]
        if name in seen:
            continue
        seen.add(name)
        prices = per_million(endpoint.get("price"))
        if prices is None:
            unpriced.append(name)
            continue
        tier_prices = {usage: per_token(prices[kind]) for usage, kind in PRICED_USAGE.items()}
        definitions.append(
            {
                "modelName": name,
                "matchPattern": match_pattern(name),
                "unit": "TOKENS",
                "pricingTiers": [{**DEFAULT_TIER, "prices": tier_prices}],
            }
        )
    return {"definitions": definitions, "unpriced": unpriced}


def _same_price(have: Any, want: float) -> bool:
    number = _number(have)
    return number is not None and math.isclose(number, want, rel_tol=PRICE_REL_TOL, abs_tol=0.0)


def model_actions(existing: list[dict[str, Any]], wanted: list[dict[str, Any]]) -> dict[str, Any]:
    """What to do so the project holds exactly the wanted definitions (by modelName).

    `existing` is what GET /api/public/models listed (the project's own and Langfuse-managed
    ones; only the project's own, isLangfuseManaged false, are ours to replace). A definition
    cannot be updated in place through the public API (4.16.0 has GET, POST and DELETE; POST
    refuses a modelName the project already has), so a changed one is deleted and created again.
    Returns {'delete': [ids], 'create': [bodies], 'unchanged': [names]}.
    """
    own: dict[str, list[dict[str, Any]]] = {}
    for model in existing or []:
        if not model.get("isLangfuseManaged"):
            own.setdefault(model.get("modelName"), []).append(model)
    delete: list[str] = []
    create: list[dict[str, Any]] = []
    unchanged: list[str] = []
    for body in wanted or []:
        found = own.get(body["modelName"], [])
        if len(found) == 1 and _definition_matches(found[0], body):
            unchanged.append(body["modelName"])
            continue
        delete += [model["id"] for model in found]
        create.append(body)
    return {"delete": delete, "create": create, "unchanged": unchanged}


def _definition_matches(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """Same pattern, unit and one default tier with the same price per usage type (GET answers
    the default tier's prices as `prices`: {usage type: {price}})."""
    tiers = have.get("pricingTiers") or []
    wanted = want["pricingTiers"][0]["prices"]
    held = {k: (v or {}).get("price") for k, v in (have.get("prices") or {}).items()}
    return (
        have.get("matchPattern") == want["matchPattern"]
        and have.get("unit") == want["unit"]
        and not have.get("startDate")
        and len(tiers) == 1
        and bool(tiers[0].get("isDefault"))
        and set(held) == set(wanted)
        and all(_same_price(held[k], wanted[k]) for k in wanted)
    )


def display_secret_key(secret: str) -> str:
    """What Langfuse shows of a stored key (web/src/features/llm-api-key/server/router.ts:
    getDisplaySecretKey): '...' and its last four characters."""
    return "..." + secret[-4:]


def llm_connections(
    endpoints: list[dict[str, Any]], api_key: str, provider_prefix: str
) -> list[dict[str, Any]]:
    """One LLM connection per served model of an inference host (PUT /api/public/llm-connections
    bodies): each vLLM container serves one model on its own port, so one base URL reaches one
    model. The key is the host's vLLM API key."""
    return [
        {
            "provider": f"{provider_prefix}{endpoint['model']}",
            "adapter": OPENAI_ADAPTER,
            "secretKey": api_key,
            "baseURL": endpoint["base_url"],
            "customModels": [endpoint["model"]],
            "withDefaultModels": False,
        }
        for endpoint in endpoints or []
    ]


def llm_connection_actions(
    existing: list[dict[str, Any]], wanted: list[dict[str, Any]]
) -> dict[str, Any]:
    """Which wanted connections to PUT (upsert by provider) and which are already right.

    Compared: adapter, base URL, custom models, default models off, and the shown end of the
    key. Returns {'put': [indexes into wanted], 'unchanged': [providers]} (indexes, so the
    caller's list, which holds the key, never leaves a no_log task)."""
    by_provider = {c.get("provider"): c for c in existing or []}
    put: list[int] = []
    unchanged: list[str] = []
    for index, body in enumerate(wanted or []):
        have = by_provider.get(body["provider"])
        if (
            have is not None
            and have.get("adapter") == body["adapter"]
            and have.get("baseURL") == body["baseURL"]
            and list(have.get("customModels") or []) == body["customModels"]
            and have.get("withDefaultModels") is False
            and have.get("displaySecretKey") == display_secret_key(body["secretKey"])
        ):
            unchanged.append(body["provider"])
        else:
            put.append(index)
    return {"put": put, "unchanged": unchanged}


def write_outcomes(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """From a registered uri loop whose bodies hold a key: only the loop index, the HTTP status
    and Langfuse's message for each write that ran (the raw results keep the request body in
    their invocation arguments and must never reach a printed task)."""
    out = []
    for result in results or []:
        if result.get("skipped"):
            continue
        answer = result.get("json") if isinstance(result.get("json"), dict) else {}
        out.append(
            {
                "index": result.get("item"),
                "status": result.get("status") or 0,
                "message": str(answer.get("message") or answer.get("error") or "")[:500],
            }
        )
    return out


def outbound_whitelist(addresses: list[str]) -> dict[str, list[str]]:
    """Split inference host addresses into Langfuse's LLM-connection whitelist: names for
    LANGFUSE_LLM_CONNECTION_WHITELISTED_HOST (exact host name match), IP literals for
    LANGFUSE_LLM_CONNECTION_WHITELISTED_IPS (exact address match). Nothing wider: no segments.
    Lower-cased, as Langfuse lower-cases the lists (packages/shared/src/env.ts)."""
    import ipaddress  # noqa: PLC0415 - only this filter needs it

    hosts: list[str] = []
    ips: list[str] = []
    for raw in addresses or []:
        address = str(raw).strip().lower().strip("[]")
        if not address:
            continue
        try:
            ipaddress.ip_address(address)
        except ValueError:
            target = hosts
        else:
            target = ips
        if address not in target:
            target.append(address)
    return {"hosts": hosts, "ips": ips}


def served_endpoints(names: list[str], hostvars: Any) -> list[dict[str, Any]]:
    """The served models (vllm_connection.endpoints: model, base_url, price) of every named host
    that published vllm_connection, in inventory order; never the API key."""
    out: list[dict[str, Any]] = []
    for name in names or []:
        connection = hostvars[name].get("vllm_connection") or {}
        out += [
            {k: v for k, v in endpoint.items() if k in ("model", "base_url", "price")}
            for endpoint in connection.get("endpoints") or []
        ]
    return out


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "glassbox_price_problems": price_problems,
            "glassbox_served_endpoints": served_endpoints,
            "glassbox_model_definitions": model_definitions,
            "glassbox_model_actions": model_actions,
            "glassbox_llm_connections": llm_connections,
            "glassbox_llm_connection_actions": llm_connection_actions,
            "glassbox_outbound_whitelist": outbound_whitelist,
            "glassbox_write_outcomes": write_outcomes,
        }
