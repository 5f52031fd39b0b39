"""Settings, read-back helpers and failure diagnoses for the glassbox smoke suite.

Kept apart from conftest.py so the helpers read like application code: this is how an app finds
its Langfuse and vLLM settings, and how it reads a trace back through the Langfuse v4 API.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ENV_FILE = REPO_ROOT / "inventories" / "local" / "credentials" / "app.env"
REQUIRED_KEYS = (
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "GLASSBOX_MODEL",
)
OPTIONAL_KEYS = (
    "LANGFUSE_HOST",
    "GLASSBOX_SMOKE_DEADLINE",
    "GLASSBOX_SMOKE_MAX_LATENCY_MS",
    "GLASSBOX_SMOKE_MIN_LENGTH",
    "GLASSBOX_SMOKE_GOOD_LENGTH",
)
# TLS (issue 12): the app env file names the CA bundle clients must trust. httpx reads
# SSL_CERT_FILE when a client is built (httpx/_config.py create_ssl_context); requests reads
# REQUESTS_CA_BUNDLE (sessions.py merge_environment_settings; the Langfuse SDK's OTLP exporter
# posts through requests with verify=True). Both come from the process environment, so
# load_settings' caller exports them (export_trust).
TRUST_KEYS = ("GLASSBOX_CA_FILE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
HOW_TO_CONFIGURE = (
    "run `ansible-playbook -i inventories/<env> playbooks/connect.yml` (writes "
    "inventories/<env>/credentials/app.env), point GLASSBOX_ENV_FILE at an app env file, "
    "or export " + ", ".join(REQUIRED_KEYS)
)
INGESTION_HINT = (
    "Langfuse web is up and accepted the keys, so ingestion is stuck behind it: check the "
    "langfuse-worker logs (`docker compose -p langfuse logs langfuse-worker`), ClickHouse, the S3 "
    "event-upload bucket (MinIO) and Redis on the observability host"
)


# The oldest Langfuse server each major line of the Python SDK works with; the pin in
# requirements.txt decides which line applies (smoke/README.md has the evidence).
# - SDK 5 documents that it needs a server >= 4.59.0: it posts scores to /api/public/scores as a
#   JSON array, which older servers answer 400 (4.16.0 accepts one object only).
# - SDK 4.18.0 (the last 4.x) sends scores as `score-create` events to /api/public/ingestion
#   and spans over OTLP; it passed this suite against the real 4.16.0 (tests/realstack), the
#   oldest server the suite has run against.
SERVER_MINIMUM_FOR_SDK = {4: (4, 16, 0), 5: (4, 59, 0)}


def version_tuple(text: str) -> tuple[int, ...]:
    """`4.16.0` -> (4, 16, 0); pre-release or build suffixes are ignored."""
    return tuple(
        int(part)
        for part in re.findall(r"\d+", text.split("-", maxsplit=1)[0].split("+", maxsplit=1)[0])[:3]
    )


def sdk_version() -> str:
    return installed_version("langfuse")


def server_too_old(server: str, sdk: str) -> str | None:
    """Why `server` cannot serve SDK `sdk`, naming both versions; None when it can."""
    sdk_major = version_tuple(sdk)[0]
    minimum = SERVER_MINIMUM_FOR_SDK.get(sdk_major)
    if minimum is None:
        return (
            f"Langfuse VERSION: the pinned Langfuse SDK {sdk} is of a major line this suite "
            f"knows no server minimum for (known: {sorted(SERVER_MINIMUM_FOR_SDK)})"
        )
    if version_tuple(server) >= minimum:
        return None
    need = ".".join(map(str, minimum))
    return (
        f"Langfuse VERSION: the server is {server}, older than {need}, which the pinned Langfuse "
        f"SDK {sdk} needs. Deploy Langfuse >= {need} (langfuse_version) or pin an SDK that "
        "supports this server (smoke/README.md lists the covered range)."
    )


class Rejections:
    """Requests Langfuse web REJECTED (4xx other than auth), collected while a test runs.

    The SDK never raises to the app: OTLP span batches answered 4xx are dropped with an ERROR
    log that carries only the status line, and SDK 4.x drops a rejected score batch without a
    word. So the suite looks at the answers themselves: a response hook on the SDK's httpx
    client (scores, projects) and, while attached, a wrapper around `requests`' Session.send
    (the OpenTelemetry exporter's transport) that records 4xx answers to the OTLP endpoint with
    the server's message. The suite then fails at once naming the endpoint and that message,
    instead of polling to its deadline. 401/403 are left to the bad-key diagnosis.
    """

    OTLP_PATH = "/api/public/otel/v1/traces"

    def __init__(self) -> None:
        self.found: list[str] = []
        self._guard = threading.Lock()
        self._original_send: Any = None

    @staticmethod
    def _is_rejection(status: int) -> bool:
        return 400 <= status < 500 and status not in {401, 403}

    def on_response(self, response: httpx.Response) -> None:
        """httpx response hook for the SDK's REST client."""
        if response.request.method != "POST":
            return
        response.read()
        path = response.request.url.path
        if self._is_rejection(response.status_code):
            self._add(f"POST {path} answered {response.status_code}: {response.text[:300]}")
        elif response.status_code == 207:
            errors = (response.json() or {}).get("errors") or []
            if errors:
                self._add(f"POST {path} answered 207 with rejected items: {str(errors)[:300]}")

    def _add(self, text: str) -> None:
        with self._guard:
            self.found.append(text)

    def clear(self) -> None:
        with self._guard:
            self.found.clear()

    def check(self) -> None:
        """Fail the test now if Langfuse rejected anything the SDK sent."""
        with self._guard:
            found = list(self.found)
        if found:
            pytest.fail(
                f"Langfuse REJECTED: {'; '.join(found)}. Langfuse web refused what the SDK "
                f"(langfuse {sdk_version()}) sent, so nothing reached the worker; check the SDK "
                "pin against the server version (smoke/README.md).",
                pytrace=False,
            )

    def attach(self) -> None:
        import requests  # noqa: PLC0415 - the OTLP exporter's HTTP library

        original = requests.Session.send
        rejections = self

        def send(session: Any, request: Any, **kwargs: Any) -> Any:
            response = original(session, request, **kwargs)
            path = urlsplit(request.url).path
            if path.endswith(rejections.OTLP_PATH) and rejections._is_rejection(
                response.status_code
            ):
                rejections._add(
                    f"POST {rejections.OTLP_PATH} answered {response.status_code}: "
                    f"{response.text[:300]}"
                )
            return response

        self._original_send = original
        requests.Session.send = send  # type: ignore[method-assign]

    def detach(self) -> None:
        import requests  # noqa: PLC0415

        if self._original_send is not None:
            requests.Session.send = self._original_send  # type: ignore[method-assign]
            self._original_send = None


class ConfigError(Exception):
    """The suite cannot tell where the stack is; the message is one line."""


def parse_env_file(path: Path) -> dict[str, str]:
    """Read plain `KEY=value` lines (blank lines, `#` comments and `export ` are tolerated)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


@dataclass(frozen=True)
class Settings:
    """Where the deployed stack is. Secrets are kept out of repr()."""

    langfuse_public_key: str
    langfuse_secret_key: str = field(repr=False)
    langfuse_base_url: str
    openai_base_url: str
    openai_api_key: str = field(repr=False)
    model: str
    source: str
    deadline_s: float = 120.0
    max_latency_ms: float = 5000.0
    min_length: int = 20
    good_length: int = 100
    trust: tuple[tuple[str, str], ...] = ()

    @property
    def vllm_root(self) -> str:
        """OPENAI_BASE_URL without its trailing /v1: where vLLM serves /health."""
        return self.openai_base_url.rstrip("/").removesuffix("/v1")


def _number(values: Mapping[str, str], key: str, default: float) -> float:
    raw = values.get(key, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"smoke: {key}={raw!r} is not a number") from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Env file (GLASSBOX_ENV_FILE, else the local inventory's), overridden by the environment."""
    environ = os.environ if environ is None else environ
    explicit = environ.get("GLASSBOX_ENV_FILE", "")
    env_file = Path(explicit) if explicit else DEFAULT_ENV_FILE
    values: dict[str, str] = {}
    if env_file.is_file():
        values.update(parse_env_file(env_file))
        source = str(env_file)
    elif explicit:
        raise ConfigError(f"smoke: GLASSBOX_ENV_FILE={explicit} does not exist; {HOW_TO_CONFIGURE}")
    else:
        source = "environment"
    for key in (*REQUIRED_KEYS, *OPTIONAL_KEYS, *TRUST_KEYS):
        if environ.get(key):
            values[key] = environ[key]
    if not values.get("LANGFUSE_BASE_URL") and values.get("LANGFUSE_HOST"):
        values["LANGFUSE_BASE_URL"] = values["LANGFUSE_HOST"]
    missing = [key for key in REQUIRED_KEYS if not values.get(key)]
    if len(missing) == len(REQUIRED_KEYS):
        raise ConfigError(f"smoke: no stack configured; {HOW_TO_CONFIGURE}")
    if missing:
        raise ConfigError(f"smoke: {', '.join(missing)} missing from {source}; {HOW_TO_CONFIGURE}")
    trust = tuple((key, values[key]) for key in TRUST_KEYS if values.get(key))
    for key, path in trust:
        if not Path(path).is_file():
            raise ConfigError(
                f"smoke: {key}={path} (from {source}) does not exist; re-run "
                "playbooks/connect.yml, which writes the CA bundle beside the app env file"
            )
    return Settings(
        langfuse_public_key=values["LANGFUSE_PUBLIC_KEY"],
        langfuse_secret_key=values["LANGFUSE_SECRET_KEY"],
        langfuse_base_url=values["LANGFUSE_BASE_URL"].rstrip("/"),
        openai_base_url=values["OPENAI_BASE_URL"].rstrip("/"),
        openai_api_key=values["OPENAI_API_KEY"],
        model=values["GLASSBOX_MODEL"],
        source=source,
        deadline_s=_number(values, "GLASSBOX_SMOKE_DEADLINE", 120.0),
        max_latency_ms=_number(values, "GLASSBOX_SMOKE_MAX_LATENCY_MS", 5000.0),
        min_length=int(_number(values, "GLASSBOX_SMOKE_MIN_LENGTH", 20)),
        good_length=int(_number(values, "GLASSBOX_SMOKE_GOOD_LENGTH", 100)),
        trust=trust,
    )


def export_trust(settings: Settings, environ: MutableMapping[str, str] | None = None) -> None:
    """Put the app env's CA settings into the process environment, where every HTTP client of
    the suite (httpx, openai, the Langfuse SDK and its OTLP exporter) reads them. Verification
    stays on: with nothing configured the clients use their default roots."""
    target = os.environ if environ is None else environ
    for key, value in settings.trust:
        target[key] = value


# ---- diagnoses: one sentence naming the component, then where to look ---------------------------
def vllm_unreachable(settings: Settings, exc: BaseException) -> str:
    return (
        f"vLLM DOWN: no answer from {settings.vllm_root} ({type(exc).__name__}: {exc}). "
        "Check the vllm compose project on the inference host (`docker compose -p vllm ps`, "
        f"`... logs`) and OPENAI_BASE_URL in {settings.source}."
    )


def vllm_bad_key(settings: Settings, status: int) -> str:
    return (
        f"vLLM BAD KEY: {settings.openai_base_url} answered {status} to OPENAI_API_KEY. "
        f"The key in {settings.source} is not the server's --api-key; re-run "
        "playbooks/connect.yml to refresh the app env file."
    )


def _get_vllm(settings: Settings, url: str) -> httpx.Response:
    """GET url with the API key; fails the test naming vLLM when it is unreachable or rejects
    the key, so every caller reports those two faults the same way."""
    try:
        response = httpx.get(
            url, headers={"Authorization": f"Bearer {settings.openai_api_key}"}, timeout=10.0
        )
    except httpx.TransportError as exc:
        pytest.fail(vllm_unreachable(settings, exc), pytrace=False)
    if response.status_code in {401, 403}:
        pytest.fail(vllm_bad_key(settings, response.status_code), pytrace=False)
    return response


def get_vllm_models(settings: Settings) -> httpx.Response:
    """GET /v1/models with the API key (see _get_vllm)."""
    return _get_vllm(settings, f"{settings.openai_base_url}/models")


def get_vllm_health(settings: Settings) -> httpx.Response:
    """GET /health with the API key: behind the glassbox TLS proxy /health passes only with it
    (vLLM itself does not check a key there)."""
    return _get_vllm(settings, f"{settings.vllm_root}/health")


def langfuse_unreachable(settings: Settings, exc: BaseException) -> str:
    return (
        f"Langfuse DOWN: no answer from {settings.langfuse_base_url} "
        f"({type(exc).__name__}: {exc}). Check the langfuse compose project on the "
        "observability host (`docker compose -p langfuse ps`, langfuse-web logs) and "
        f"LANGFUSE_BASE_URL in {settings.source}."
    )


def langfuse_bad_keys(settings: Settings, status: int, body: str) -> str:
    return (
        f"Langfuse BAD KEY: {settings.langfuse_base_url} answered {status} ({body.strip()[:160]}) "
        f"to LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY from {settings.source}. The project keys "
        "do not match the server's (LANGFUSE_INIT_PROJECT_*_KEY); re-run playbooks/connect.yml."
    )


def trace_url(langfuse: Any, trace_id: str) -> str:
    """The UI link of a trace, or why there is none (`get_trace_url` raises on API errors)."""
    try:
        url = langfuse.get_trace_url(trace_id=trace_id)
    except Exception as exc:
        return f"(no trace URL: {type(exc).__name__}) trace id {trace_id}"
    return url or f"(no trace URL) trace id {trace_id}"


# ---- read-back ---------------------------------------------------------------------------------
V2_FIELDS = "core,basic,usage,model"


class LangfuseReader:
    """Reads traces and scores back through the Langfuse v4 public API, polling to a deadline."""

    def __init__(self, settings: Settings, langfuse: Any, rejections: Rejections) -> None:
        self.settings = settings
        self.langfuse = langfuse
        self.rejections = rejections
        self.http = httpx.Client(
            base_url=settings.langfuse_base_url,
            auth=(settings.langfuse_public_key, settings.langfuse_secret_key),
            timeout=10.0,
        )

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        """One authenticated GET; fails the test at once on bad keys."""
        response = self.http.get(path, params=params)
        if response.status_code in {401, 403}:
            pytest.fail(
                langfuse_bad_keys(self.settings, response.status_code, response.text),
                pytrace=False,
            )
        return response

    def poll(
        self,
        path: str,
        params: dict[str, Any],
        done: Callable[[list[dict[str, Any]]], bool],
        what: str,
        trace_id: str,
    ) -> list[dict[str, Any]]:
        """GET `path` until `done(data)` or the deadline; fail with a diagnosis otherwise."""
        deadline = time.monotonic() + self.settings.deadline_s
        delay, last_error, data = 0.25, None, []
        while True:
            self.rejections.check()
            try:
                response = self.get(path, params)
            except httpx.TransportError as exc:
                last_error = exc
            else:
                if response.status_code == 200:
                    last_error = None
                    data = response.json()["data"]
                    if done(data):
                        return data
                else:
                    last_error = RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 1.6, 2.0)
        if isinstance(last_error, httpx.TransportError):
            pytest.fail(langfuse_unreachable(self.settings, last_error), pytrace=False)
        detail = f" (last answer: {last_error})" if last_error else f" (saw {len(data)} rows)"
        pytest.fail(
            f"Langfuse INGESTION STUCK: {what} not readable via GET {path} within "
            f"{self.settings.deadline_s:g} s{detail}. {INGESTION_HINT}. "
            f"Trace: {trace_url(self.langfuse, trace_id)}",
            pytrace=False,
        )
        return []  # unreachable: pytest.fail raises

    def observations(
        self, trace_id: str, done: Callable[[list[dict[str, Any]]], bool], what: str
    ) -> list[dict[str, Any]]:
        params = {"traceId": trace_id, "fields": V2_FIELDS, "limit": 100}
        return self.poll("/api/public/v2/observations", params, done, what, trace_id)

    def traces_with_generation(self, trace_ids: list[str]) -> None:
        """Poll until every trace has a generation; fail naming how many never landed."""
        deadline = time.monotonic() + self.settings.deadline_s
        pending, delay = list(trace_ids), 0.25
        while pending:
            self.rejections.check()
            for trace_id in list(pending):
                try:
                    response = self.get(
                        "/api/public/v2/observations",
                        {"traceId": trace_id, "fields": V2_FIELDS, "limit": 100},
                    )
                except httpx.TransportError as exc:
                    pytest.fail(langfuse_unreachable(self.settings, exc), pytrace=False)
                if response.status_code == 200 and by_type(response.json()["data"], "GENERATION"):
                    pending.remove(trace_id)
            if not pending or time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 1.6, 2.0)
        if pending:
            pytest.fail(
                f"Langfuse INGESTION STUCK: {len(pending)} of {len(trace_ids)} traces not "
                f"readable within {self.settings.deadline_s:g} s. {INGESTION_HINT}. "
                f"First missing: {trace_url(self.langfuse, pending[0])}",
                pytrace=False,
            )

    def scores(
        self, trace_id: str, done: Callable[[list[dict[str, Any]]], bool], what: str
    ) -> list[dict[str, Any]]:
        params = {"traceId": trace_id, "limit": 100}
        return self.poll("/api/public/v3/scores", params, done, what, trace_id)


def by_type(observations: list[dict[str, Any]], obs_type: str) -> list[dict[str, Any]]:
    return [obs for obs in observations if obs.get("type") == obs_type]


def check_usage(generation: dict[str, Any], usage: Any, settings: Settings, url: str) -> list[str]:
    """Compare stored usageDetails with the `usage` the LLM returned; return the problems.

    Langfuse splits cached prompt tokens into `input_cached_tokens`, so the returned prompt_tokens
    equal `input` plus every `input_*` entry (and likewise for output).
    """
    details = generation.get("usageDetails") or {}
    if not details:
        return [
            f"USAGE MISSING: generation {generation.get('id')} landed without usageDetails "
            f"(the LLM returned {usage}). Check that vLLM returns `usage` (streams need "
            "stream_options={'include_usage': True}) and that the app calls the LLM through "
            f"langfuse.openai. Trace: {url}"
        ]
    problems = []
    sums = {
        "input": sum(v for k, v in details.items() if k == "input" or k.startswith("input_")),
        "output": sum(v for k, v in details.items() if k == "output" or k.startswith("output_")),
        "total": details.get("total", 0),
    }
    expected = {
        "input": usage.prompt_tokens,
        "output": usage.completion_tokens,
        "total": usage.total_tokens,
    }
    for key, want in expected.items():
        if not details.get(key, 0) > 0:
            problems.append(f"usageDetails.{key} is {details.get(key)!r}, expected > 0")
        if sums[key] != want:
            problems.append(f"usageDetails {key} sums to {sums[key]}, the LLM returned {want}")
    if problems:
        problems = [
            f"USAGE WRONG: {'; '.join(problems)} (usageDetails={details}). Trace: {url}",
        ]
    return problems
