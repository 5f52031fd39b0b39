"""Evaluations as scores: latency and answer length, attached to the trace and read back (v3 API).

Thresholds come from the environment (or the app env file): GLASSBOX_SMOKE_MAX_LATENCY_MS (5000),
GLASSBOX_SMOKE_MIN_LENGTH (20), GLASSBOX_SMOKE_GOOD_LENGTH (100).
"""

from __future__ import annotations

import time
from typing import Any

import glassbox_smoke as gs
from langfuse import observe

QUESTION = "Name three things a smoke test of an LLM service should check."


def latency_score(latency_ms: float, max_latency_ms: float) -> float:
    """1 when the answer came within the latency budget, else 0."""
    return 1.0 if latency_ms <= max_latency_ms else 0.0


def length_score(length: int, min_length: int, good_length: int) -> float:
    """0 below the minimum, 0.5 between minimum and good, 1 from good length on."""
    if length < min_length:
        return 0.0
    return 0.5 if length < good_length else 1.0


def test_evaluation_scores_land_on_the_trace(
    llm: Any, langfuse: Any, settings: gs.Settings, langfuse_reader: gs.LangfuseReader
) -> None:
    captured: dict[str, Any] = {}

    @observe(name="glassbox-smoke-evaluated")
    def pipeline(question: str) -> str:
        captured["trace"] = langfuse.get_current_trace_id()
        started = time.perf_counter()
        response = llm.chat.completions.create(
            model=settings.model,
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=48,
        )
        captured["latency_ms"] = (time.perf_counter() - started) * 1000
        return response.choices[0].message.content or ""

    answer = pipeline(QUESTION)
    trace_id = captured["trace"]
    expected = {
        "glassbox.latency": latency_score(captured["latency_ms"], settings.max_latency_ms),
        "glassbox.answer_length": length_score(
            len(answer), settings.min_length, settings.good_length
        ),
    }
    langfuse.create_score(
        name="glassbox.latency",
        value=expected["glassbox.latency"],
        trace_id=trace_id,
        data_type="NUMERIC",
        comment=f"{captured['latency_ms']:.0f} ms, budget {settings.max_latency_ms:g} ms",
    )
    langfuse.create_score(
        name="glassbox.answer_length",
        value=expected["glassbox.answer_length"],
        trace_id=trace_id,
        data_type="NUMERIC",
        comment=f"{len(answer)} chars (min {settings.min_length}, good {settings.good_length})",
    )
    langfuse.flush()

    def both_landed(scores: list[dict[str, Any]]) -> bool:
        return set(expected) <= {score["name"] for score in scores}

    scores = langfuse_reader.scores(trace_id, both_landed, f"the 2 scores of trace {trace_id}")
    got = {score["name"]: score["value"] for score in scores if score["name"] in expected}
    assert got == expected, (
        f"SCORES: read back {got}, sent {expected}. Trace: {gs.trace_url(langfuse, trace_id)}"
    )
