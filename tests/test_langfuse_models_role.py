"""roles/langfuse_models without a Langfuse: its checks, the facts it needs, and what it says when
there is nothing to register (the real registration is tests/test_realstack_models.py)."""

from __future__ import annotations

import json

import pytest

from tests.ansible_run import local_inventory, play

pytestmark = pytest.mark.roles

SECRET = "sk-vllm-never-printed-0123456789"  # noqa: S105 - a test value, not a credential

# host -> (inventory values, the variable the message must name)
BAD = {
    "api_url_ftp": (
        {"langfuse_models_api_url": "ftp://langfuse.example.com"},
        "langfuse_models_api_url",
    ),
    "api_url_bare": (
        {"langfuse_models_api_url": "langfuse.example.com"},
        "langfuse_models_api_url",
    ),
    "prefix_space": (
        {"langfuse_models_provider_prefix": "my vllm"},
        "langfuse_models_provider_prefix",
    ),
    "timeout_zero": ({"langfuse_models_timeout": 0}, "langfuse_models_timeout"),
    "timeout_text": ({"langfuse_models_timeout": "soon"}, "langfuse_models_timeout"),
    "flag_text": ({"langfuse_models_llm_connections": "maybe"}, "langfuse_models_llm_connections"),
}
GOOD = {"langfuse_models_api_url": "https://langfuse.example.com/", "langfuse_models_timeout": 5}


def test_bad_values_are_refused_naming_the_variable(tmp_path):
    hosts = {name: values for name, (values, _) in BAD.items()} | {"good": GOOD}
    run = play(
        tmp_path,
        [
            {
                "name": "Check the inputs",
                "hosts": "all",
                "gather_facts": False,
                "tasks": [
                    {
                        "name": "Validate",
                        "ansible.builtin.include_role": {
                            "name": "langfuse_models",
                            "tasks_from": "validate",
                        },
                    }
                ],
            }
        ],
        inventory=local_inventory(hosts, groups={}),
        check=True,
    )
    assert run.failures("good") == []
    for host, (values, variable) in BAD.items():
        messages = " ".join(run.failures(host))
        assert variable in messages, f"{host}: {values} not refused naming {variable}: {messages}"


def _inventory(lf_vars: dict, vllm_vars: dict) -> dict:
    return local_inventory(
        {"lf": lf_vars, "gpu": vllm_vars},
        groups={"observability": ["lf"], "inference": ["gpu"]},
    )


VLLM = {
    "vllm_connection": {
        "base_url": "http://gpu1:8000/v1",
        "api_key": SECRET,
        "models": ["m"],
        "endpoints": [{"model": "m", "base_url": "http://gpu1:8000/v1"}],
    }
}
LANGFUSE = {
    "langfuse_connection": {
        "base_url": "http://127.0.0.1:9",  # nothing listens: a call would fail the run
        "public_key": "pk-lf-x",
        "secret_key": "sk-lf-x",
    }
}


def test_langfuse_not_started_registers_nothing_and_says_how_to_price(tmp_path):
    """Molecule's `configured` deploy: no API to call; the run changes nothing and its closing
    lines say why and how to turn cost per trace on."""
    run = play(
        tmp_path,
        "playbooks/langfuse_models.yml",
        inventory=_inventory({**LANGFUSE, "langfuse_state": "configured"}, VLLM),
    )
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("localhost") == 0
    text = json.dumps(run.report)
    assert "state configured, not started" in text
    assert "No price for m" in text
    assert "vllm_models[].price" in text
    assert SECRET not in run.output


@pytest.mark.parametrize(
    ("lf_vars", "vllm_vars"),
    [({}, VLLM), (LANGFUSE, {})],
    ids=["no langfuse_connection", "no vllm_connection"],
)
def test_missing_facts_stop_the_run_saying_which_role_to_run(tmp_path, lf_vars, vllm_vars):
    run = play(tmp_path, "playbooks/langfuse_models.yml", inventory=_inventory(lf_vars, vllm_vars))
    assert run.rc != 0
    messages = " ".join(run.failures("localhost"))
    assert "run the vllm and langfuse roles first" in messages, messages


def test_check_mode_before_the_first_deploy_predicts_the_registration(tmp_path):
    """--check on a fresh deployment: Langfuse is not reachable yet; the run does not fail and
    reports what it would register."""
    priced = {
        "vllm_connection": {
            **VLLM["vllm_connection"],
            "endpoints": [
                {
                    "model": "m",
                    "base_url": "http://gpu1:8000/v1",
                    "price": {"input_per_million": 1, "output_per_million": 2},
                }
            ],
        }
    }
    run = play(
        tmp_path,
        "playbooks/langfuse_models.yml",
        inventory=_inventory(LANGFUSE, priced),
        check=True,
        diff=True,
    )
    assert run.rc == 0, run.output[-3000:]
    assert run.changed("localhost") == 1
    text = json.dumps(run.report)
    assert "Would delete 0 and create" in text
    assert SECRET not in run.output


def _validate_then_register(tmp_path, localhost_vars: dict):
    """site.yml's order: the checks on the Langfuse host (playbooks/validate.yml), then the role
    on the controller (playbooks/langfuse_models.yml), whose own values may differ."""
    validate = {
        "name": "Validate",
        "ansible.builtin.include_role": {"name": "langfuse_models", "tasks_from": "validate"},
    }
    return play(
        tmp_path,
        [
            {
                "name": "Checks",
                "hosts": "observability",
                "gather_facts": False,
                "tasks": [validate],
            },
            {
                "name": "Register",
                "hosts": "localhost",
                "gather_facts": False,
                "roles": ["langfuse_models"],
            },
        ],
        inventory=local_inventory(
            {
                "lf": {**LANGFUSE, "langfuse_state": "configured"},
                "gpu": VLLM,
                "localhost": localhost_vars,
            },
            groups={"observability": ["lf"], "inference": ["gpu"]},
        ),
    )


def test_checks_that_passed_in_this_run_are_not_repeated(tmp_path):
    run = _validate_then_register(tmp_path, {})
    assert run.rc == 0, run.output[-3000:]
    ran = [
        task["task"]["name"]
        for each_play in run.report["plays"]
        for task in each_play["tasks"]
        if "localhost" in task["hosts"] and not task["hosts"]["localhost"].get("skipped")
    ]
    assert not [name for name in ran if "Check langfuse_models_api_url" in name], ran
    assert "state configured, not started" in json.dumps(run.report)


def test_other_values_on_the_controller_are_checked_again(tmp_path):
    run = _validate_then_register(tmp_path / "other", {"langfuse_models_timeout": 0})
    assert run.rc != 0
    messages = " ".join(run.failures("localhost"))
    assert "langfuse_models_timeout must be 1 or more seconds (got 0)" in messages, messages
