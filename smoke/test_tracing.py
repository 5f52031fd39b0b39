"""Traced completions land in Langfuse, read back through the v4 API, with the usage vLLM returned.

The pattern is the one an application uses: an `@observe` pipeline span, and inside it a call
through `langfuse.openai.OpenAI`, which records a nested generation. `flush()` only means
delivered; the suite then polls GET /api/public/v2/observations until the data is readable.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import glassbox_smoke as gs
import openai
import pytest
from langfuse import observe

QUESTION = "In one sentence, what does an observability platform for LLM applications do?"
BURST_SIZE = 20
BURST_WORKERS = 4


def _ask(llm: Any, settings: gs.Settings, question: str, **extra: Any) -> Any:
    return llm.chat.completions.create(
        model=settings.model,
        messages=[{"role": "user", "content": question}],
        temperature=0,
        name="glassbox-smoke-generation",
        **({"max_tokens": 24} | extra),
    )


def _ids(langfuse: Any) -> dict[str, str]:
    return {
        "trace": langfuse.get_current_trace_id(),
        "span": langfuse.get_current_observation_id(),
    }


def _span_and_generation(span_id: str) -> Any:
    """Done when the pipeline span AND a generation are readable: the real pipeline (web -> S3
    -> Redis -> worker -> ClickHouse) makes observations visible one by one."""

    def done(observations: list[dict[str, Any]]) -> bool:
        has_span = any(obs["id"] == span_id for obs in observations)
        return has_span and bool(gs.by_type(observations, "GENERATION"))

    return done


def _check_generation(
    observations: list[dict[str, Any]], ids: dict[str, str], usage: Any, ctx: dict[str, Any]
) -> None:
    settings, url = ctx["settings"], ctx["url"]
    spans = [obs for obs in observations if obs["id"] == ids["span"]]
    assert spans, f"TRACE: the pipeline span {ids['span']} is missing. Trace: {url}"
    generations = gs.by_type(observations, "GENERATION")
    assert len(generations) == 1, f"TRACE: expected one generation, got {generations}. {url}"
    generation = generations[0]
    assert generation["parentObservationId"] == ids["span"], (
        f"TRACE: the generation's parent is {generation['parentObservationId']!r}, not the "
        f"pipeline span {ids['span']}: the call was not made inside the @observe context. {url}"
    )
    assert generation.get("model") == settings.model, (
        f"TRACE: the generation's model is {generation.get('model')!r}, expected the served "
        f"model {settings.model!r}. Trace: {url}"
    )
    problems = gs.check_usage(generation, usage, settings, url)
    assert not problems, problems[0]


def test_traced_pipeline_lands_with_usage(
    llm: Any, langfuse: Any, settings: gs.Settings, langfuse_reader: gs.LangfuseReader
) -> None:
    """@observe span -> nested langfuse.openai generation -> read back with model and usage."""
    captured: dict[str, Any] = {}

    @observe(name="glassbox-smoke-pipeline")
    def pipeline(question: str) -> str:
        captured.update(_ids(langfuse))
        response = _ask(llm, settings, question)
        captured["usage"] = response.usage
        return response.choices[0].message.content or ""

    answer = pipeline(QUESTION)
    langfuse.flush()
    assert answer, "vLLM returned an empty answer"
    assert captured["usage"] is not None, "vLLM returned no `usage` on a chat completion"
    trace_id = captured["trace"]
    observations = langfuse_reader.observations(
        trace_id,
        _span_and_generation(captured["span"]),
        f"trace {trace_id} (pipeline span + generation)",
    )
    ctx = {"settings": settings, "url": gs.trace_url(langfuse, trace_id)}
    _check_generation(observations, captured, captured["usage"], ctx)


def test_streamed_completion_lands_with_usage(
    llm: Any, langfuse: Any, settings: gs.Settings, langfuse_reader: gs.LangfuseReader
) -> None:
    """A streamed call with stream_options.include_usage lands with the streamed usage."""
    captured: dict[str, Any] = {"usage": None}

    @observe(name="glassbox-smoke-stream")
    def pipeline(question: str) -> str:
        captured.update(_ids(langfuse))
        parts = []
        stream = _ask(llm, settings, question, stream=True, stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                captured["usage"] = chunk.usage
        return "".join(parts)

    answer = pipeline(QUESTION)
    langfuse.flush()
    assert answer, "vLLM streamed an empty answer"
    assert captured["usage"] is not None, (
        "vLLM sent no usage chunk although stream_options={'include_usage': True} was set"
    )
    trace_id = captured["trace"]
    observations = langfuse_reader.observations(
        trace_id,
        _span_and_generation(captured["span"]),
        f"streamed trace {trace_id} (span + generation)",
    )
    ctx = {"settings": settings, "url": gs.trace_url(langfuse, trace_id)}
    _check_generation(observations, captured, captured["usage"], ctx)


def test_failed_call_is_an_error_observation(
    llm: Any, langfuse: Any, settings: gs.Settings, langfuse_reader: gs.LangfuseReader
) -> None:
    """A call to an unknown model fails, and lands as an ERROR-level generation."""
    captured: dict[str, Any] = {}
    bogus = f"glassbox-smoke-no-such-model-{uuid.uuid4().hex[:6]}"

    @observe(name="glassbox-smoke-failing-call")
    def pipeline() -> None:
        captured.update(_ids(langfuse))
        with pytest.raises(openai.APIStatusError) as raised:
            llm.chat.completions.create(
                model=bogus, messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
        captured["status"] = raised.value.status_code

    pipeline()
    langfuse.flush()
    assert captured["status"] in {400, 404}, (
        f"vLLM answered {captured['status']} to an unknown model, expected 404"
    )
    trace_id = captured["trace"]

    def has_span_and_error(observations: list[dict[str, Any]]) -> bool:
        has_span = any(obs["id"] == captured["span"] for obs in observations)
        return has_span and any(obs.get("level") == "ERROR" for obs in observations)

    observations = langfuse_reader.observations(
        trace_id, has_span_and_error, f"the span and ERROR observation of trace {trace_id}"
    )
    errors = [obs for obs in observations if obs.get("level") == "ERROR"]
    assert errors[0]["parentObservationId"] == captured["span"], (
        f"the ERROR observation is not a child of the pipeline span: {errors[0]}"
    )


def test_concurrent_burst_all_land(
    llm: Any, langfuse: Any, settings: gs.Settings, langfuse_reader: gs.LangfuseReader
) -> None:
    """20 traced completions on a small thread pool: every trace lands, none lost."""

    @observe(name="glassbox-smoke-burst")
    def pipeline(index: int) -> str:
        trace_id = langfuse.get_current_trace_id()
        _ask(llm, settings, f"Count from {index} to {index + 3}.", max_tokens=8)
        return trace_id

    with ThreadPoolExecutor(max_workers=BURST_WORKERS) as pool:
        trace_ids = list(pool.map(pipeline, range(BURST_SIZE)))
    langfuse.flush()
    assert len(set(trace_ids)) == BURST_SIZE, "each pipeline call should be its own trace"
    langfuse_reader.traces_with_generation(trace_ids)
