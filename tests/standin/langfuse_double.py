"""A Langfuse v4 *contract double*, kept only for FAULTS the real server cannot show on demand.

It is not Langfuse: every happy-path and shape test runs against the real Langfuse
(tests/realstack). The double speaks the wire contract described in
../shared/reference/langfuse-wire.md as server 4.16.0 does (the version it claims): OTLP/HTTP
protobuf (gzip) ingestion with Basic auth, scores as one object on /api/public/scores (an array
is a 400, as on 4.16.0) or as `score-create` events on /api/public/ingestion (207), the v2
observations and v3 scores read APIs, health and projects, with the server's span-to-observation
mapping (see otel_mapping.py). Faults it injects, to exercise the smoke suite's failure messages:

- ``ingest_delay_s``: ingested data becomes readable only after that many seconds
  (a stuck worker / ClickHouse when larger than the suite's deadline);
- different ``public_key`` / ``secret_key`` than the client uses: every authed call answers 401;
- ``drop_usage``: generations are stored without usage or cost;
- ``version``: what ``/api/public/health`` reports;
- ``reject_ingest``: OTLP span batches answer 400 with a message (a request web rejects);
- ``span_delay_s``: SPAN observations become readable that much later than the rest (the real
  pipeline makes a trace's observations visible one by one);
- down: simply do not start it, or ``stop()`` it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.standin import otel_mapping

INVALID_CREDENTIALS = "Invalid credentials. Confirm that you've configured the correct host."
V2_FIELD_GROUPS = {
    "core",
    "basic",
    "time",
    "io",
    "metadata",
    "model",
    "usage",
    "prompt",
    "metrics",
    "trace_context",
}
V3_SCORE_PARAMS = {
    "limit",
    "cursor",
    "fields",
    "id",
    "name",
    "source",
    "dataType",
    "environment",
    "configId",
    "queueId",
    "authorUserId",
    "value",
    "traceId",
    "sessionId",
    "observationId",
    "experimentId",
    "valueMin",
    "valueMax",
    "fromTimestamp",
    "toTimestamp",
}


def _now_iso() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class DoubleConfig:
    public_key: str = "pk-lf-standin"
    secret_key: str = "sk-lf-standin"  # noqa: S105 - a throwaway key of a loopback test double
    version: str = "4.16.0"
    ingest_delay_s: float = 0.0
    drop_usage: bool = False
    reject_ingest: str = ""
    span_delay_s: float = 0.0
    project_id: str = "standin-project"
    project_name: str = "glassbox stand-in"


@dataclass
class _Store:
    lock: threading.Lock = field(default_factory=threading.Lock)
    observations: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    scores: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    ingest_headers: list[dict[str, str]] = field(default_factory=list)


class LangfuseDouble:
    """Start with ``start()`` (binds 127.0.0.1 on a free port), stop with ``stop()``."""

    def __init__(self, config: DoubleConfig | None = None, port: int = 0) -> None:
        self.config = config or DoubleConfig()
        self.store = _Store()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the double is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LangfuseDouble:
        handler = type("BoundHandler", (_Handler,), {"double": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="langfuse-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LangfuseDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what tests may inspect -------------------------------------------------------------
    def observations(self, *, visible_only: bool = True) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self.store.lock:
            return [o for t, o in self.store.observations if not visible_only or t <= now]

    def scores(self, *, visible_only: bool = True) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self.store.lock:
            return [s for t, s in self.store.scores if not visible_only or t <= now]

    # ---- ingestion --------------------------------------------------------------------------
    def ingest(self, observations: list[dict[str, Any]]) -> None:
        visible_at = time.monotonic() + self.config.ingest_delay_s
        with self.store.lock:
            for obs in observations:
                later = self.config.span_delay_s if obs.get("type") == "SPAN" else 0.0
                if self.config.drop_usage:
                    obs["usageDetails"] = {}
                    obs["costDetails"] = {}
                self.store.observations.append((visible_at + later, obs))

    def add_scores(self, items: list[dict[str, Any]]) -> None:
        visible_at = time.monotonic() + self.config.ingest_delay_s
        with self.store.lock:
            self.store.scores.extend((visible_at, item) for item in items)


class _Handler(BaseHTTPRequestHandler):
    double: LangfuseDouble
    protocol_version = "HTTP/1.1"
    server_version = "langfuse-contract-double"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log; requests are recorded in the store."""

    # ---- plumbing ---------------------------------------------------------------------------
    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.double.store.lock:
            self.double.store.requests.append((self.command, self.path, status))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = "/" + "/".join(p for p in parts.path.split("/") if p)  # tolerate `//`
        return path, parse_qs(parts.query, keep_blank_values=True)

    def _authorised(self) -> bool:
        header = self.headers.get("Authorization")
        if not header:
            self._send(HTTPStatus.UNAUTHORIZED, {"message": "No authorization header"})
            return False
        scheme, _, encoded = header.partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        public_key, _, secret_key = decoded.partition(":")
        cfg = self.double.config
        ok = (
            scheme.lower() == "basic"
            and hmac.compare_digest(public_key, cfg.public_key)
            and hmac.compare_digest(secret_key, cfg.secret_key)
        )
        if not ok:
            self._send(HTTPStatus.UNAUTHORIZED, {"message": INVALID_CREDENTIALS})
        return ok

    # ---- verbs ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path, query = self._route()
        if path == "/api/public/health":
            self._send(HTTPStatus.OK, {"status": "OK", "version": self.double.config.version})
            return
        routes = {
            "/api/public/projects": self._projects,
            "/api/public/v2/observations": self._v2_observations,
            "/api/public/v3/scores": self._v3_scores,
        }
        if path not in routes:
            self._send(HTTPStatus.NOT_FOUND, {"message": "Not found", "error": path})
            return
        if self._authorised():
            routes[path](query)

    def do_POST(self) -> None:
        path, _ = self._route()
        body = self._body()
        routes = {
            "/api/public/otel/v1/traces": self._otel_traces,
            "/api/public/scores": self._post_scores,
            "/api/public/ingestion": self._post_ingestion,
        }
        if path not in routes:
            self._send(HTTPStatus.NOT_FOUND, {"message": "Not found", "error": path})
            return
        if self._authorised():
            routes[path](body)

    # ---- endpoints --------------------------------------------------------------------------
    def _projects(self, _query: dict[str, list[str]]) -> None:
        cfg = self.double.config
        project = {
            "id": cfg.project_id,
            "name": cfg.project_name,
            "organization": {"id": "standin-org", "name": "glassbox stand-in"},
            "metadata": {},
        }
        self._send(HTTPStatus.OK, {"data": [project]})

    def _otel_traces(self, body: bytes) -> None:
        if self.double.config.reject_ingest:
            self._send(HTTPStatus.BAD_REQUEST, {"error": self.double.config.reject_ingest})
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-protobuf":
            self._send(
                HTTPStatus.BAD_REQUEST, {"error": f"unsupported content type {content_type}"}
            )
            return
        version = self.headers.get("x-langfuse-ingestion-version")
        if version is not None and (not version.isdigit() or int(version) > 4):
            self._send(
                HTTPStatus.BAD_REQUEST, {"error": f"unsupported ingestion version {version}"}
            )
            return
        try:
            request = otel_mapping.decode_export(body, self.headers.get("Content-Encoding"))
            observations = otel_mapping.export_to_observations(
                request, self.double.config.project_id
            )
        except otel_mapping.IngestError as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        with self.double.store.lock:
            self.double.store.ingest_headers.append({k.lower(): v for k, v in self.headers.items()})
        self.double.ingest(observations)
        self._send(HTTPStatus.OK, {})

    def _post_scores(self, body: bytes) -> None:
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            self._send(HTTPStatus.BAD_REQUEST, {"message": "Invalid JSON body"})
            return
        # 4.16.0 takes one object (PostScoresBodyV1); SDK 5's array is a zod 400 there.
        score = self._inflate_score(parsed)
        if score is None:
            got = "array" if isinstance(parsed, list) else type(parsed).__name__
            issue = {"message": f"Invalid input: expected object, received {got}"}
            self._send(
                HTTPStatus.BAD_REQUEST, {"message": "Invalid request data", "error": [issue]}
            )
            return
        self.double.add_scores([score])
        self._send(HTTPStatus.OK, {"id": score["id"]})

    def _post_ingestion(self, body: bytes) -> None:
        """The batch route SDK 4.x sends scores to: `score-create` events, answered 207."""
        try:
            batch = json.loads(body or b"null").get("batch")
        except (ValueError, AttributeError):
            batch = None
        if not isinstance(batch, list):
            self._send(HTTPStatus.BAD_REQUEST, {"message": "Invalid request data"})
            return
        successes, errors, stored = [], [], []
        for event in batch:
            event_id = event.get("id") if isinstance(event, dict) else None
            score = None
            if isinstance(event, dict) and event.get("type") == "score-create":
                score = self._inflate_score(event.get("body"))
            if score is None:
                errors.append({"id": event_id, "status": 400, "message": "Invalid request data"})
                continue
            stored.append(score)
            successes.append({"id": event_id, "status": 201})
        self.double.add_scores(stored)
        self._send(HTTPStatus.MULTI_STATUS, {"successes": successes, "errors": errors})

    def _inflate_score(self, item: Any) -> dict[str, Any] | None:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        data_type = item.get("dataType") or ("CATEGORICAL" if isinstance(value, str) else "NUMERIC")
        now = _now_iso()
        return {
            "id": item.get("id") or uuid.uuid4().hex[:16],
            "projectId": self.double.config.project_id,
            "name": item["name"],
            "value": value,
            "dataType": data_type,
            "source": "API",
            "timestamp": item.get("timestamp") or now,
            "environment": item.get("environment") or "default",
            "createdAt": now,
            "updatedAt": now,
            "comment": item.get("comment"),
            "configId": item.get("configId"),
            "metadata": item.get("metadata") if isinstance(item.get("metadata"), dict) else {},
            "traceId": item.get("traceId"),
            "observationId": item.get("observationId"),
            "sessionId": item.get("sessionId"),
        }

    def _v2_observations(self, query: dict[str, list[str]]) -> None:
        if query.get("parseIoAsJson", ["false"])[0] == "true":
            self._send(
                HTTPStatus.BAD_REQUEST,
                {"message": "Invalid request data", "error": ["parseIoAsJson is not supported"]},
            )
            return
        wanted = {"core", "basic"}
        if "fields" in query:
            wanted = {f.strip() for f in query["fields"][0].split(",")} & V2_FIELD_GROUPS
            wanted.add("core")
        limit = min(int(query.get("limit", ["50"])[0]), 1000)
        filters = {
            key: query[key][0]
            for key in ("traceId", "name", "type", "level", "parentObservationId")
            if key in query
        }
        rows = [
            obs
            for obs in self.double.observations()
            if all(str(obs.get(key)) == value for key, value in filters.items())
        ]
        rows.sort(key=lambda obs: obs["startNs"], reverse=True)
        data = [otel_mapping.v2_item(obs, wanted) for obs in rows[:limit]]
        self._send(HTTPStatus.OK, {"data": data, "meta": {}})

    def _v3_scores(self, query: dict[str, list[str]]) -> None:
        unknown = sorted(set(query) - V3_SCORE_PARAMS)
        if unknown:
            issue = {"message": f"Unrecognized key(s) in object: {', '.join(unknown)}"}
            self._send(
                HTTPStatus.BAD_REQUEST, {"message": "Invalid request data", "error": [issue]}
            )
            return
        if "observationId" in query and "traceId" not in query:
            issue = {"message": "observationId requires traceId"}
            self._send(
                HTTPStatus.BAD_REQUEST, {"message": "Invalid request data", "error": [issue]}
            )
            return
        limit = min(int(query.get("limit", ["50"])[0]), 100)
        filters = {
            key: set(query[key][0].split(","))
            for key in ("id", "name", "traceId", "observationId", "sessionId", "dataType")
            if key in query
        }
        groups = {"core"}
        if "fields" in query:
            groups |= {f.strip() for f in query["fields"][0].split(",")}
        rows = [
            score
            for score in self.double.scores()
            if all(str(score.get(key)) in values for key, values in filters.items())
        ]
        data = [self._v3_score_item(score, groups) for score in rows[:limit]]
        self._send(HTTPStatus.OK, {"data": data, "meta": {"limit": limit}})

    @staticmethod
    def _v3_score_item(score: dict[str, Any], groups: set[str]) -> dict[str, Any]:
        core = (
            "id",
            "projectId",
            "name",
            "value",
            "dataType",
            "source",
            "timestamp",
            "environment",
            "createdAt",
            "updatedAt",
        )
        item = {key: score[key] for key in core}
        if "details" in groups:
            item.update(
                {key: score[key] for key in ("comment", "configId", "metadata")},
            )
        if "subject" in groups:
            if score["observationId"]:
                item["subject"] = {
                    "kind": "observation",
                    "id": score["observationId"],
                    "traceId": score["traceId"],
                }
            elif score["traceId"]:
                item["subject"] = {"kind": "trace", "id": score["traceId"]}
            elif score["sessionId"]:
                item["subject"] = {"kind": "session", "id": score["sessionId"]}
        return item
