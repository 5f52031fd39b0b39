"""Prices of the served models and what Langfuse is told (plugins/filter/model_prices.py)."""

from __future__ import annotations

import math
import re

import pytest

from tests.unit import load_plugin

prices = load_plugin("plugins/filter/model_prices.py")


def problems_of(price):
    return prices.price_problems([{"model": "m", "price": price}])


# --- the formula -----------------------------------------------------------------------------


def test_direct_price_is_taken_as_given():
    assert prices.per_million({"input_per_million": 0.2, "output_per_million": "0.6"}) == {
        "input": 0.2,
        "output": 0.6,
    }


def test_hourly_cost_over_throughput_at_full_use():
    # 2.88 per hour, 800 tokens/s: 2.88 / (3600 * 800) per token = 1.0 per 1M tokens
    assert prices.per_million({"hourly_cost": 2.88, "tokens_per_second": 800}) == {
        "input": pytest.approx(1.0),
        "output": pytest.approx(1.0),
    }


def test_utilisation_spreads_idle_hours_over_the_tokens():
    half = prices.per_million({"hourly_cost": 2.88, "tokens_per_second": 800, "utilisation": 0.5})
    assert half["output"] == pytest.approx(2.0)


def test_every_token_of_a_paid_hour_adds_up_to_the_hourly_cost():
    price = {"hourly_cost": 3.6, "tokens_per_second": 250, "utilisation": 0.8}
    got = prices.per_million(price)
    assert got["input"] == got["output"]
    busy_tokens_per_hour = 3600 * 250 * 0.8
    assert busy_tokens_per_hour * got["output"] / 1_000_000 == pytest.approx(3.6)


def test_no_price_is_none():
    assert prices.per_million({}) is None
    assert prices.per_million(None) is None


def test_langfuse_unit_price_is_per_token():
    assert prices.per_token(0.6) == pytest.approx(6e-7, rel=1e-12)
    assert prices.per_token(10 / 3) == pytest.approx(3.33333333333e-6, rel=1e-11)


# --- bad input, naming the variable ----------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "words"),
    [
        (
            {"input_per_million": -1, "output_per_million": 1},
            ["price.input_per_million", "0 or more"],
        ),
        ({"input_per_million": "cheap", "output_per_million": 1}, ["input_per_million", "number"]),
        ({"input_per_million": 1}, ["price.output_per_million", "both"]),
        ({"hourly_cost": 2, "tokens_per_second": 0}, ["price.tokens_per_second is 0"]),
        ({"hourly_cost": 2}, ["price.tokens_per_second", "benchmarks/throughput.py"]),
        ({"tokens_per_second": 100}, ["price.hourly_cost"]),
        ({"hourly_cost": -3, "tokens_per_second": 10}, ["price.hourly_cost", "0 or more"]),
        ({"hourly_cost": 2, "tokens_per_second": 10, "utilisation": 1.5}, ["price.utilisation"]),
        ({"hourly_cost": 2, "tokens_per_second": 10, "utilisation": 0}, ["price.utilisation"]),
        ({"utilisation": 0.5}, ["price.hourly_cost", "price.tokens_per_second"]),
        (
            {"hourly_cost": 2, "tokens_per_second": 10, "input_tokens_per_second": 5},
            ["input_tokens_per_second"],
        ),
        (
            {"input_per_million": 1, "output_per_million": 1, "hourly_cost": 2},
            ["mixes a direct price"],
        ),
        ({"input_per_million": 1, "output_per_million": 1, "currency": "EUR"}, ["currency"]),
        ({"hourly_cost": True, "tokens_per_second": 10}, ["hourly_cost", "number"]),
        ({"hourly_cost": "nan", "tokens_per_second": 10}, ["hourly_cost", "number"]),
    ],
)
def test_bad_price_names_the_variable(price, words):
    found = " ".join(problems_of(price))
    assert found, f"{price} was accepted"
    assert "vllm_models[0].price" in found
    for word in words:
        assert word in found


@pytest.mark.parametrize(
    "price",
    [
        {},
        None,
        {"input_per_million": 0, "output_per_million": 0},
        {"input_per_million": "0.15", "output_per_million": "0.6"},
        {"hourly_cost": 1.2, "tokens_per_second": 450.5, "utilisation": 0.35},
        {"hourly_cost": 0, "tokens_per_second": 1},
    ],
)
def test_good_price_passes(price):
    assert problems_of(price) == []


def test_the_index_of_the_bad_model_is_named():
    found = prices.price_problems(
        [{"model": "a"}, {"model": "b", "price": {"hourly_cost": 1, "tokens_per_second": 0}}]
    )
    assert found
    assert all("vllm_models[1].price" in f for f in found)


# --- what Langfuse is told -------------------------------------------------------------------


def test_match_pattern_matches_only_the_served_name():
    pattern = prices.match_pattern("Qwen/Qwen2.5-0.5B-Instruct")
    assert pattern.startswith("(?i)^(")
    assert pattern.endswith(")$")
    # Python's re stands in for PostgreSQL's ~ here: same syntax for these constructs.
    assert re.search(pattern, "qwen/qwen2.5-0.5b-instruct")
    assert not re.search(pattern, "Qwen/Qwen2X5-0.5B-Instruct")
    assert not re.search(pattern, "Qwen/Qwen2.5-0.5B-Instruct-AWQ")


TIER_PRICES = {
    "input": 1e-6,
    "input_cached_tokens": 1e-6,
    "output": 2e-6,
    "output_reasoning_tokens": 2e-6,
}


def test_definitions_for_priced_models_and_names_of_the_others():
    price = {"input_per_million": 1, "output_per_million": 2}
    plan = prices.model_definitions(
        [
            {"model": "a", "base_url": "u", "price": price},
            {"model": "b", "base_url": "u"},
            {"model": "a", "base_url": "other host"},
        ]
    )
    assert plan["unpriced"] == ["b"]
    (definition,) = plan["definitions"]
    assert definition == {
        "modelName": "a",
        "matchPattern": "(?i)^(a)$",
        "unit": "TOKENS",
        "pricingTiers": [
            {
                "name": "Standard",
                "isDefault": True,
                "priority": 0,
                "conditions": [],
                "prices": TIER_PRICES,
            }
        ],
    }


def _registered(prices_held=None, **overrides):
    held = TIER_PRICES if prices_held is None else prices_held
    return {
        "id": "m1",
        "modelName": "a",
        "matchPattern": "(?i)^(a)$",
        "unit": "TOKENS",
        "inputPrice": held.get("input"),
        "outputPrice": held.get("output"),
        "totalPrice": None,
        "startDate": None,
        "isLangfuseManaged": False,
        "prices": {k: {"price": v} for k, v in held.items()},
        "pricingTiers": [{"isDefault": True, "prices": held}],
        **overrides,
    }


WANTED = prices.model_definitions(
    [{"model": "a", "base_url": "u", "price": {"input_per_million": 1, "output_per_million": 2}}]
)["definitions"]


def test_an_equal_definition_is_left_alone():
    assert prices.model_actions([_registered()], WANTED) == {
        "delete": [],
        "create": [],
        "unchanged": ["a"],
    }


def test_a_missing_definition_is_created():
    managed = _registered(id="lf", isLangfuseManaged=True)
    assert prices.model_actions([managed], WANTED)["create"] == WANTED
    assert prices.model_actions([managed], WANTED)["delete"] == []


@pytest.mark.parametrize(
    "changed",
    [
        {"prices_held": {**TIER_PRICES, "output": 3e-6}},
        {"prices_held": {"input": 1e-6, "output": 2e-6}},
        {"prices_held": {**TIER_PRICES, "total": 1e-6}},
        {"matchPattern": "a"},
        {"unit": "CHARACTERS"},
        {"startDate": "2026-01-01T00:00:00.000Z"},
        {"pricingTiers": [{"isDefault": True}, {"isDefault": False}]},
    ],
)
def test_a_changed_definition_is_replaced(changed):
    actions = prices.model_actions([_registered(**changed)], WANTED)
    assert actions == {"delete": ["m1"], "create": WANTED, "unchanged": []}


def test_two_own_definitions_of_one_name_are_both_replaced():
    actions = prices.model_actions([_registered(), _registered(id="m2")], WANTED)
    assert actions["delete"] == ["m1", "m2"]
    assert actions["create"] == WANTED


def test_decimal_noise_is_not_a_change():
    noisy = _registered(prices_held={**TIER_PRICES, "input": 1e-6 * (1 + 1e-12)})
    assert prices.model_actions([noisy], WANTED)["unchanged"] == ["a"]


def test_llm_connection_per_served_model():
    endpoints = [
        {"model": "a", "base_url": "http://gpu1:8000/v1"},
        {"model": "b", "base_url": "http://gpu1:8001/v1"},
    ]
    got = prices.llm_connections(endpoints, "sk-vllm-abcd1234", "vllm-")
    assert [c["provider"] for c in got] == ["vllm-a", "vllm-b"]
    assert got[1] == {
        "provider": "vllm-b",
        "adapter": "openai",
        "secretKey": "sk-vllm-abcd1234",
        "baseURL": "http://gpu1:8001/v1",
        "customModels": ["b"],
        "withDefaultModels": False,
    }


def test_llm_connection_actions_compare_what_langfuse_shows():
    wanted = prices.llm_connections(
        [{"model": "a", "base_url": "http://gpu1:8000/v1"}], "sk-vllm-abcd1234", "vllm-"
    )
    same = {
        "provider": "vllm-a",
        "adapter": "openai",
        "baseURL": "http://gpu1:8000/v1",
        "customModels": ["a"],
        "withDefaultModels": False,
        "displaySecretKey": "...1234",
    }
    assert prices.llm_connection_actions([same], wanted) == {"put": [], "unchanged": ["vllm-a"]}
    for change in (
        {"baseURL": "http://gpu2:8000/v1"},
        {"customModels": ["a", "b"]},
        {"withDefaultModels": True},
        {"displaySecretKey": "...9999"},
        {"adapter": "anthropic"},
    ):
        assert prices.llm_connection_actions([{**same, **change}], wanted)["put"] == [0], change
    assert prices.llm_connection_actions([], wanted)["put"] == [0]


def test_whitelist_splits_names_and_addresses_and_nothing_wider():
    got = prices.outbound_whitelist(
        ["GPU1.example.internal", "10.0.0.7", "[fd00::7]", "10.0.0.7", ""]
    )
    assert got == {"hosts": ["gpu1.example.internal"], "ips": ["10.0.0.7", "fd00::7"]}


def test_served_endpoints_never_carry_the_key():
    hostvars = {
        "gpu1": {
            "vllm_connection": {
                "api_key": "sk-vllm-secret",
                "endpoints": [{"model": "a", "base_url": "u", "api_key": "sk-vllm-secret"}],
            }
        },
        "gpu2": {},
    }
    got = prices.served_endpoints(["gpu1", "gpu2"], hostvars)
    assert got == [{"model": "a", "base_url": "u"}]
    assert "sk-vllm-secret" not in repr(got)


def test_the_formula_in_the_docstring_is_the_one_computed():
    doc = prices.__doc__
    assert "hourly_cost * 1_000_000 / (3600 * tokens_per_second * utilisation)" in doc
    hourly, tps, share = 2.5, 120.0, 0.4
    assert prices.per_million(
        {"hourly_cost": hourly, "tokens_per_second": tps, "utilisation": share}
    )["output"] == pytest.approx(hourly * 1_000_000 / (3600 * tps * share))
    assert math.isfinite(prices.per_token(1.0))
