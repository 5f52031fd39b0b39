"""OTEL span -> Langfuse observation mapping, as the Langfuse v4 server does it.

Written from the rules in ../shared/reference/langfuse-wire.md section 3 (server 4.16.0:
OtelIngestionProcessor.processToEvent, ObservationTypeMapper, the worker's usage handling).
Pure functions only, so the contract double and its unit tests share one implementation.
"""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

STATUS_CODE_ERROR = 2
KNOWN_TYPES = {
    "span",
    "generation",
    "event",
    "agent",
    "tool",
    "chain",
    "retriever",
    "evaluator",
    "guardrail",
    "embedding",
}
LEVELS = {"DEBUG", "DEFAULT", "WARNING", "ERROR"}
LEVEL_ALIASES = {"INFO": "DEFAULT", "OK": "DEFAULT", "WARN": "WARNING", "FATAL": "ERROR"}
LEVEL_ALIASES["CRITICAL"] = "ERROR"
MODEL_ATTRIBUTES = (
    "langfuse.observation.model.name",
    "gen_ai.response.model",
    "ai.model.id",
    "gen_ai.request.model",
)
ENVIRONMENT_RE = re.compile(r"^(?!langfuse)[a-z0-9_-]+$")
OPENAI_CHAT_KEYS = {"prompt_tokens", "completion_tokens", "total_tokens"}
RESPONSES_KEYS = {"input_tokens", "output_tokens", "total_tokens"}
OBS_META_PREFIX = "langfuse.observation.metadata."
TRACE_META_PREFIX = "langfuse.trace.metadata."


class IngestError(ValueError):
    """The request body is not a valid OTLP export (the real server answers 400)."""


def decode_export(body: bytes, content_encoding: str | None) -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP protobuf body, gunzipping it when the header says gzip."""
    if (content_encoding or "").strip().lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise IngestError(f"invalid gzip body: {exc}") from exc
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception as exc:  # protobuf raises its own DecodeError, a bare Exception subclass
        raise IngestError(f"invalid protobuf body: {exc}") from exc
    return request


def any_value(value: AnyValue) -> Any:
    """Convert an OTLP AnyValue to the Python value it carries."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in key_values}


def ns_to_iso(ns: int) -> str:
    """Unix nanoseconds to ISO 8601 UTC, truncated to milliseconds (`...123Z`)."""
    moment = datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def observation_type(attrs: dict[str, Any]) -> str:
    declared = attrs.get("langfuse.observation.type")
    if isinstance(declared, str) and declared.lower() in KNOWN_TYPES:
        return declared.upper()
    if any(attrs.get(key) for key in MODEL_ATTRIBUTES):
        return "GENERATION"
    return "SPAN"


def observation_level(attrs: dict[str, Any], status_code: int) -> str:
    declared = attrs.get("langfuse.observation.level")
    if isinstance(declared, str) and declared:
        upper = declared.upper()
        upper = LEVEL_ALIASES.get(upper, upper)
        if upper in LEVELS:
            return upper
    if status_code == STATUS_CODE_ERROR:
        return "ERROR"
    return "DEFAULT"


def environment(span_attrs: dict[str, Any], resource_attrs: dict[str, Any]) -> str:
    raw = None
    for source, key in (
        (span_attrs, "langfuse.environment"),
        (resource_attrs, "langfuse.environment"),
        (resource_attrs, "deployment.environment"),
        (resource_attrs, "deployment.environment.name"),
    ):
        if isinstance(source.get(key), str) and source[key]:
            raw = source[key]
            break
    if raw is None:
        return "default"
    value = raw.lower()
    value = value.removeprefix("langfuse")[:40]
    return value if ENVIRONMENT_RE.match(value) else "default"


def _json_or_none(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return None


def model_parameters(raw: Any) -> dict[str, Any]:
    parsed = _json_or_none(raw)
    if not isinstance(parsed, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in parsed.items():
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        out[key] = value if isinstance(value, str) or is_number else json.dumps(value)
    return out


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _details_sum(details: Any, prefix: str, out: dict[str, int]) -> int:
    """Add `<prefix>_<k>` entries for integer details, return their sum."""
    if not isinstance(details, dict):
        return 0
    total = 0
    for key, value in details.items():
        if _is_count(value):
            out[f"{prefix}_{key}"] = value
            total += value
    return total


def _strict_shape(usage: dict[str, Any], counts: set[str], details: set[str]) -> bool:
    if not counts.issubset(usage) or not set(usage).issubset(counts | details):
        return False
    if not all(_is_count(usage[key]) for key in counts):
        return False
    return all(usage.get(key) is None or isinstance(usage[key], dict) for key in details)


def normalise_usage(raw: Any) -> dict[str, int]:
    """Turn `langfuse.observation.usage_details` into stored usageDetails.

    First match wins: OpenAI chat usage (strict keys), Responses API usage (strict keys),
    then the raw fallback that keeps non-negative integers and integer strings. A missing
    `total` is then filled in as the sum of the other entries, as the worker does.
    """
    usage = _json_or_none(raw) if isinstance(raw, str) else raw
    if not isinstance(usage, dict):
        return {}
    out: dict[str, int] = {}
    chat_details = {"prompt_tokens_details", "completion_tokens_details"}
    responses_details = {"input_tokens_details", "output_tokens_details"}
    if _strict_shape(usage, OPENAI_CHAT_KEYS, chat_details):
        cached_in = _details_sum(usage.get("prompt_tokens_details"), "input", out)
        cached_out = _details_sum(usage.get("completion_tokens_details"), "output", out)
        out["input"] = usage["prompt_tokens"] - cached_in
        out["output"] = usage["completion_tokens"] - cached_out
        out["total"] = usage["total_tokens"]
        return out
    if _strict_shape(usage, RESPONSES_KEYS, responses_details):
        cached_in = _details_sum(usage.get("input_tokens_details"), "input", out)
        cached_out = _details_sum(usage.get("output_tokens_details"), "output", out)
        out["input"] = usage["input_tokens"] - cached_in
        out["output"] = usage["output_tokens"] - cached_out
        out["total"] = usage["total_tokens"]
        return out
    for key, value in usage.items():
        if _is_count(value):
            out[key] = value
        elif isinstance(value, str) and value.isdigit():
            out[key] = int(value)
    if out and "total" not in out:
        out["total"] = sum(out.values())
    return out


def cost_details(raw: Any) -> dict[str, float]:
    parsed = _json_or_none(raw)
    if not isinstance(parsed, dict):
        return {}
    return {
        key: float(value)
        for key, value in parsed.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    }


def _prefixed(attrs: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {key[len(prefix) :]: value for key, value in attrs.items() if key.startswith(prefix)}


def _tags(raw: Any) -> list[str]:
    if isinstance(raw, list):
        return [str(tag) for tag in raw]
    if isinstance(raw, str) and raw:
        parsed = _json_or_none(raw)
        if isinstance(parsed, list):
            return [str(tag) for tag in parsed]
        return [part.strip() for part in raw.split(",") if part.strip()]
    return []


def _first_str(attrs: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if isinstance(attrs.get(key), str) and attrs[key]:
            return attrs[key]
    return ""


def span_to_observation(
    span: Any, resource_attrs: dict[str, Any], scope: Any, project_id: str
) -> dict[str, Any]:
    """Map one OTLP span to the observation record the v2 read API serves."""
    attrs = attributes(span.attributes)
    if len(span.span_id) != 8 or len(span.trace_id) != 16:
        raise IngestError("span is missing a valid span_id or trace_id")
    start_ns = span.start_time_unix_nano or span.end_time_unix_nano
    end_ns = span.end_time_unix_nano or span.start_time_unix_nano
    parent = span.parent_span_id.hex()
    obs_type = observation_type(attrs)
    completion_start = _json_or_none(attrs.get("langfuse.observation.completion_start_time"))
    metadata: dict[str, Any] = {
        "resourceAttributes": resource_attrs,
        "scope": {
            "name": scope.name,
            "version": scope.version,
            "attributes": attributes(scope.attributes),
        },
    }
    metadata.update(_prefixed(attrs, OBS_META_PREFIX))
    metadata.update(_prefixed(attrs, TRACE_META_PREFIX))
    return {
        "id": span.span_id.hex(),
        "traceId": span.trace_id.hex(),
        "parentObservationId": parent or None,
        "startTime": ns_to_iso(start_ns),
        "endTime": ns_to_iso(end_ns),
        "startNs": start_ns,
        "endNs": end_ns,
        "projectId": project_id,
        "type": obs_type,
        "name": span.name,
        "level": observation_level(attrs, span.status.code),
        "statusMessage": _first_str(attrs, "langfuse.observation.status_message")
        or (span.status.message or None),
        "version": _first_str(attrs, "langfuse.version")
        or _first_str(resource_attrs, "service.version"),
        "release": _first_str(attrs, "langfuse.release")
        or _first_str(resource_attrs, "langfuse.release"),
        "environment": environment(attrs, resource_attrs),
        "model": _first_str(attrs, *MODEL_ATTRIBUTES) or None,
        "modelParameters": model_parameters(attrs.get("langfuse.observation.model.parameters")),
        "usageDetails": normalise_usage(attrs.get("langfuse.observation.usage_details")),
        "costDetails": cost_details(attrs.get("langfuse.observation.cost_details")),
        "completionStartTime": completion_start if isinstance(completion_start, str) else None,
        "input": attrs.get("langfuse.observation.input"),
        "output": attrs.get("langfuse.observation.output"),
        "metadata": metadata,
        "userId": _first_str(attrs, "langfuse.user.id", "user.id"),
        "sessionId": _first_str(
            attrs, "langfuse.session.id", "session.id", "gen_ai.conversation.id"
        ),
        "tags": _tags(attrs.get("langfuse.trace.tags")),
        "traceName": _first_str(attrs, "langfuse.trace.name"),
        "isRootObservation": not parent or attrs.get("langfuse.internal.is_app_root") is True,
    }


def export_to_observations(
    request: ExportTraceServiceRequest, project_id: str
) -> list[dict[str, Any]]:
    observations = []
    for resource_spans in request.resource_spans:
        resource_attrs = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                observations.append(
                    span_to_observation(span, resource_attrs, scope_spans.scope, project_id)
                )
    return observations


def _usage_sum(usage: dict[str, int], needle: str) -> int | None:
    values = [value for key, value in usage.items() if needle in key]
    return sum(values) if values else None


def v2_item(obs: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    """Render one stored observation as `GET /api/public/v2/observations` does."""
    item: dict[str, Any] = {
        "id": obs["id"],
        "traceId": obs["traceId"],
        "startTime": obs["startTime"],
        "endTime": obs["endTime"],
        "projectId": obs["projectId"],
        "parentObservationId": obs["parentObservationId"],
        "type": obs["type"],
        "latency": (obs["endNs"] - obs["startNs"]) / 1e9,
        "timeToFirstToken": None,
        "modelId": None,
        "inputPrice": None,
        "outputPrice": None,
        "totalPrice": None,
    }
    if "basic" in fields:
        item.update(
            {
                "name": obs["name"],
                "level": obs["level"],
                "statusMessage": obs["statusMessage"] or "",
                "version": obs["version"],
                "environment": obs["environment"],
                "bookmarked": False,
                "public": False,
                "userId": obs["userId"],
                "sessionId": obs["sessionId"],
                "isRootObservation": obs["isRootObservation"],
            }
        )
    if "time" in fields:
        item["completionStartTime"] = obs["completionStartTime"]
    if "io" in fields:
        item["input"] = obs["input"]
        item["output"] = obs["output"]
    if "metadata" in fields:
        item["metadata"] = obs["metadata"]
    if "model" in fields:
        item.update(
            {
                "model": obs["model"] or "",
                "internalModelId": "",
                "modelParameters": obs["modelParameters"],
            }
        )
    if "usage" in fields:
        usage, cost = obs["usageDetails"], obs["costDetails"]
        item.update(
            {
                "usageDetails": usage,
                "costDetails": cost,
                "totalCost": cost.get("total", 0),
                "inputUsage": _usage_sum(usage, "input") or 0,
                "outputUsage": _usage_sum(usage, "output") or 0,
                "totalUsage": usage.get("total", 0),
                "inputCost": cost.get("input"),
                "outputCost": cost.get("output"),
                "usagePricingTierId": None,
                "usagePricingTierName": None,
            }
        )
    return item
