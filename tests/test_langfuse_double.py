"""Unit tests of the Langfuse contract double: the server's mapping rules and its HTTP contract.

The mapping tests build OTLP spans by hand; the contract tests drive the double over HTTP and
check it answers as the 4.16.0 it claims to be. The double only serves fault tests; the SDK's
happy path runs against the real Langfuse (tests/test_realstack.py).
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.standin import otel_mapping as m
from tests.standin.langfuse_double import INVALID_CREDENTIALS, DoubleConfig, LangfuseDouble

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN_ID = bytes.fromhex("b7ad6b7169203331")
PARENT_ID = bytes.fromhex("00f067aa0ba902b7")


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        any_value = AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = AnyValue(int_value=value)
    elif isinstance(value, list):
        any_value = AnyValue()
        any_value.array_value.values.extend(AnyValue(string_value=v) for v in value)
    else:
        any_value = AnyValue(string_value=value)
    return KeyValue(key=key, value=any_value)


def _span(
    attrs: dict[str, Any], *, parent: bytes = b"", status: int = 0, message: str = ""
) -> Span:
    span = Span(
        trace_id=TRACE_ID,
        span_id=SPAN_ID,
        parent_span_id=parent,
        name="unit-span",
        start_time_unix_nano=1_795_700_000_123_456_789,
        end_time_unix_nano=1_795_700_001_987_654_321,
        status=Status(code=status, message=message),
    )
    span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return span


def _export(span: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(_kv(k, v) for k, v in (resource or {}).items())
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "langfuse-sdk"
    scope_spans.scope.version = "5.0.4"
    scope_spans.spans.append(span)
    return request


def _map(span: Span, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    observations = m.export_to_observations(_export(span, resource), "p1")
    assert len(observations) == 1
    return observations[0]


# ---- usage normalisation (langfuse-wire.md section 3) -------------------------------------------
def test_openai_chat_usage_subtracts_cached_and_detail_tokens() -> None:
    raw = {
        "prompt_tokens": 11,
        "completion_tokens": 3,
        "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    assert m.normalise_usage(json.dumps(raw)) == {
        "input": 11,
        "output": 3,
        "total": 14,
        "input_cached_tokens": 0,
        "input_audio_tokens": 0,
        "output_reasoning_tokens": 0,
        "output_audio_tokens": 0,
    }
    cached = {"prompt_tokens": 31, "completion_tokens": 5, "total_tokens": 36}
    cached["prompt_tokens_details"] = {"cached_tokens": 30}  # type: ignore[assignment]
    assert m.normalise_usage(json.dumps(cached)) == {
        "input": 1,
        "output": 5,
        "total": 36,
        "input_cached_tokens": 30,
    }


def test_streamed_usage_with_null_details_is_openai_shaped() -> None:
    raw = '{"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13, '
    raw += '"prompt_tokens_details": null, "completion_tokens_details": null}'
    assert m.normalise_usage(raw) == {"input": 9, "output": 4, "total": 13}


def test_responses_api_usage() -> None:
    raw = {
        "input_tokens": 20,
        "output_tokens": 7,
        "total_tokens": 27,
        "output_tokens_details": {"reasoning_tokens": 2},
    }
    assert m.normalise_usage(raw) == {
        "input": 20,
        "output": 5,
        "total": 27,
        "output_reasoning_tokens": 2,
    }


def test_extra_key_falls_back_to_raw_and_adds_total() -> None:
    # `cost` breaks the strict OpenAI shape, so nothing is renamed; floats and objects drop out.
    raw = {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.02, "x": {"y": 1}, "n": "7"}
    assert m.normalise_usage(json.dumps(raw)) == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "n": 7,
        "total": 22,
    }
    assert m.normalise_usage('{"input": 10, "output": 5, "total": 15}') == {
        "input": 10,
        "output": 5,
        "total": 15,
    }


@pytest.mark.parametrize("raw", [None, "", "not json", "[1, 2]", '{"a": -1, "b": 1.5}'])
def test_no_usable_usage_gives_empty_details(raw: Any) -> None:
    assert m.normalise_usage(raw) == {}


# ---- span -> observation -----------------------------------------------------------------------
def test_generation_span_mapping() -> None:
    obs = _map(
        _span(
            {
                "langfuse.observation.type": "generation",
                "langfuse.observation.model.name": "glassbox-smollm2",
                "langfuse.observation.model.parameters": '{"temperature": 0, "max_tokens": '
                '"Infinity", "stop": ["x"]}',
                "langfuse.observation.usage_details": '{"prompt_tokens": 5, '
                '"completion_tokens": 2, "total_tokens": 7}',
                "langfuse.observation.metadata.finish_reason": '"stop"',
                "langfuse.observation.completion_start_time": '"2026-11-26T16:45:21.686262Z"',
            },
            parent=PARENT_ID,
        ),
    )
    assert obs["id"] == "b7ad6b7169203331"
    assert obs["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert obs["parentObservationId"] == "00f067aa0ba902b7"
    assert obs["type"] == "GENERATION"
    assert obs["startTime"] == "2026-11-26T13:33:20.123Z"
    assert obs["endTime"] == "2026-11-26T13:33:21.987Z"
    assert obs["model"] == "glassbox-smollm2"
    assert obs["modelParameters"] == {"temperature": 0, "max_tokens": "Infinity", "stop": '["x"]'}
    assert obs["usageDetails"] == {"input": 5, "output": 2, "total": 7}
    assert obs["metadata"]["finish_reason"] == '"stop"'  # kept raw, as the server does
    assert obs["completionStartTime"] == "2026-11-26T16:45:21.686262Z"
    assert obs["level"] == "DEFAULT"
    assert obs["environment"] == "default"
    assert obs["isRootObservation"] is False


def test_root_span_defaults() -> None:
    obs = _map(_span({}))
    assert obs["type"] == "SPAN"
    assert obs["parentObservationId"] is None
    assert obs["isRootObservation"] is True
    assert obs["model"] is None
    assert obs["usageDetails"] == {}


def test_model_attribute_without_type_is_a_generation() -> None:
    assert _map(_span({"gen_ai.request.model": "m"}))["type"] == "GENERATION"


@pytest.mark.parametrize(
    ("attrs", "status", "level"),
    [
        ({"langfuse.observation.level": "ERROR"}, 0, "ERROR"),
        ({"langfuse.observation.level": "warn"}, 0, "WARNING"),
        ({"langfuse.observation.level": "info"}, 2, "DEFAULT"),
        ({"langfuse.observation.level": "critical"}, 0, "ERROR"),
        ({}, 2, "ERROR"),
        ({}, 1, "DEFAULT"),
    ],
)
def test_level_from_attribute_else_status(attrs: dict[str, Any], status: int, level: str) -> None:
    assert _map(_span(attrs, status=status))["level"] == level


def test_status_message_prefers_attribute() -> None:
    obs = _map(_span({}, status=2, message="RuntimeError: cm boom"))
    assert obs["statusMessage"] == "RuntimeError: cm boom"
    obs = _map(_span({"langfuse.observation.status_message": "boom"}, status=2, message="x"))
    assert obs["statusMessage"] == "boom"


@pytest.mark.parametrize(
    ("span_env", "resource", "expected"),
    [
        (None, {}, "default"),
        ("Staging", {}, "staging"),
        (None, {"langfuse.environment": "prod"}, "prod"),
        (None, {"deployment.environment": "qa"}, "qa"),
        ("bad env!", {}, "default"),
    ],
)
def test_environment(span_env: str | None, resource: dict[str, Any], expected: str) -> None:
    attrs = {"langfuse.environment": span_env} if span_env else {}
    assert _map(_span(attrs), resource)["environment"] == expected


def test_trace_attributes_and_app_root() -> None:
    obs = _map(
        _span(
            {
                "user.id": "u1",
                "session.id": "s1",
                "langfuse.trace.tags": ["a", "b"],
                "langfuse.internal.is_app_root": True,
            },
            parent=PARENT_ID,
        )
    )
    assert (obs["userId"], obs["sessionId"], obs["tags"]) == ("u1", "s1", ["a", "b"])
    assert obs["isRootObservation"] is True


def test_v2_item_field_groups() -> None:
    obs = _map(_span({"langfuse.observation.model.name": "m"}))
    core = m.v2_item(obs, {"core"})
    assert "name" not in core
    assert "usageDetails" not in core
    assert core["modelId"] is None
    full = m.v2_item(obs, {"core", "basic", "usage", "model"})
    assert full["model"] == "m"
    assert "providedModelName" not in full
    assert full["usageDetails"] == {}
    assert full["level"] == "DEFAULT"


def test_invalid_bodies_raise() -> None:
    with pytest.raises(m.IngestError):
        m.decode_export(b"not gzip", "gzip")
    with pytest.raises(m.IngestError):
        m.decode_export(b"\xff\xff\xff", None)
    bad = _span({})
    bad.span_id = b"\x01"
    with pytest.raises(m.IngestError):
        m.export_to_observations(_export(bad), "p1")


# ---- HTTP contract -----------------------------------------------------------------------------
@pytest.fixture
def double() -> Iterator[LangfuseDouble]:
    with LangfuseDouble(DoubleConfig()) as started:
        yield started


def _basic(public_key: str, secret_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_auth_bodies_match_the_real_server(double: LangfuseDouble) -> None:
    url = f"{double.base_url}/api/public/projects"
    no_header = httpx.get(url)
    assert (no_header.status_code, no_header.json()) == (
        401,
        {"message": "No authorization header"},
    )
    wrong = httpx.get(url, headers=_basic(double.config.public_key, "sk-lf-wrong"))
    assert (wrong.status_code, wrong.json()) == (401, {"message": INVALID_CREDENTIALS})
    ok = httpx.get(url, headers=_basic(double.config.public_key, double.config.secret_key))
    assert ok.status_code == 200
    assert ok.json()["data"][0]["organization"]["id"]
    health = httpx.get(f"{double.base_url}/api/public/health")
    assert health.json() == {"status": "OK", "version": "4.16.0"}


def test_otel_endpoint_rejects_bad_input(double: LangfuseDouble) -> None:
    auth = _basic(double.config.public_key, double.config.secret_key)
    url = f"{double.base_url}//api/public/otel/v1/traces"  # a trailing-slash base URL
    body = gzip.compress(_export(_span({})).SerializeToString())
    headers = {**auth, "Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    assert httpx.post(url, content=body, headers=headers).status_code == 200
    assert httpx.post(url, content=b"junk", headers=headers).status_code == 400
    json_headers = {**auth, "Content-Type": "application/json"}
    assert httpx.post(url, content=b"{}", headers=json_headers).status_code == 400
    newer = {**headers, "x-langfuse-ingestion-version": "5"}
    assert httpx.post(url, content=body, headers=newer).status_code == 400
    assert len(double.observations()) == 1


def test_v3_scores_rejects_unknown_parameters(double: LangfuseDouble) -> None:
    auth = _basic(double.config.public_key, double.config.secret_key)
    url = f"{double.base_url}/api/public/v3/scores"
    assert httpx.get(url, params={"userId": "u"}, headers=auth).status_code == 400
    assert httpx.get(url, params={"observationId": "o"}, headers=auth).status_code == 400
    ok = httpx.get(url, params={"traceId": "t"}, headers=auth)
    assert ok.json() == {"data": [], "meta": {"limit": 50}}


def test_ingest_delay_and_dropped_usage() -> None:
    with LangfuseDouble(DoubleConfig(ingest_delay_s=60, drop_usage=True)) as delayed:
        usage = '{"input": 3, "output": 1}'
        delayed.ingest(m.export_to_observations(_export(_span({"x": usage})), "p"))
        delayed.ingest(
            m.export_to_observations(
                _export(_span({"langfuse.observation.usage_details": usage})), "p"
            )
        )
        assert delayed.observations() == []
        stored = delayed.observations(visible_only=False)
        assert len(stored) == 2
        assert all(obs["usageDetails"] == {} for obs in stored)


def test_scores_behave_like_the_claimed_4_16_0(double: LangfuseDouble) -> None:
    """4.16.0 takes one score object on /api/public/scores (an array, as SDK 5 sends, is a 400)
    and `score-create` events on /api/public/ingestion (SDK 4.x), answering 207."""
    auth = (double.config.public_key, double.config.secret_key)
    score = {"name": "unit.score", "value": 1.0, "traceId": "ab" * 16}
    as_array = httpx.post(f"{double.base_url}/api/public/scores", json=[score], auth=auth)
    assert as_array.status_code == 400
    assert "expected object, received array" in as_array.text
    single = httpx.post(f"{double.base_url}/api/public/scores", json=score, auth=auth)
    assert single.status_code == 200
    assert set(single.json()) == {"id"}
    batch = {"batch": [{"id": "e1", "type": "score-create", "body": score}]}
    ingested = httpx.post(f"{double.base_url}/api/public/ingestion", json=batch, auth=auth)
    assert ingested.status_code == 207
    assert ingested.json() == {"successes": [{"id": "e1", "status": 201}], "errors": []}
    assert [s["name"] for s in double.scores()] == ["unit.score", "unit.score"]
