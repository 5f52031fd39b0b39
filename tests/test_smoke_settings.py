"""Settings loading of the smoke suite (smoke/glassbox_smoke.py), without any server."""

from __future__ import annotations

import http.server
import importlib.util
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import certifi
import pytest
import requests

from tests.standin.harness import REPO_ROOT
from tests.tls_certs import make_ca, make_leaf

FULL = {
    "LANGFUSE_PUBLIC_KEY": "pk-lf-1",
    "LANGFUSE_SECRET_KEY": "sk-lf-1",
    "LANGFUSE_BASE_URL": "http://lf:3000/",
    "OPENAI_BASE_URL": "http://gpu:8000/v1",
    "OPENAI_API_KEY": "vllm-1",
    "GLASSBOX_MODEL": "m",
}


@pytest.fixture(scope="module")
def gs() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "glassbox_smoke_under_test", REPO_ROOT / "smoke" / "glassbox_smoke.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_environment_alone_is_enough(gs: ModuleType, tmp_path: Path) -> None:
    settings = gs.load_settings({**FULL, "GLASSBOX_ENV_FILE": ""})
    assert settings.langfuse_base_url == "http://lf:3000"
    assert settings.vllm_root == "http://gpu:8000"
    assert (settings.deadline_s, settings.max_latency_ms) == (120.0, 5000.0)
    assert (settings.min_length, settings.good_length) == (20, 100)
    assert "sk-lf-1" not in repr(settings)
    assert "vllm-1" not in repr(settings)


def test_file_then_environment_override(gs: ModuleType, tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    lines = [f"{k}={v}" for k, v in FULL.items() if k != "LANGFUSE_BASE_URL"]
    lines += ["# comment", "", "export LANGFUSE_HOST='http://old-host:3000'"]
    lines += ['GLASSBOX_SMOKE_DEADLINE="7"']
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = gs.load_settings({"GLASSBOX_ENV_FILE": str(env_file), "GLASSBOX_MODEL": "other"})
    assert settings.langfuse_base_url == "http://old-host:3000"  # LANGFUSE_HOST fallback
    assert settings.model == "other"
    assert settings.deadline_s == 7.0
    assert settings.source == str(env_file)


def test_partial_configuration_names_what_is_missing(gs: ModuleType) -> None:
    partial = {k: v for k, v in FULL.items() if k not in {"OPENAI_API_KEY", "GLASSBOX_MODEL"}}
    with pytest.raises(gs.ConfigError, match="OPENAI_API_KEY, GLASSBOX_MODEL missing"):
        gs.load_settings(partial)


def test_bad_number_is_reported(gs: ModuleType) -> None:
    with pytest.raises(gs.ConfigError, match="GLASSBOX_SMOKE_DEADLINE='soon'"):
        gs.load_settings({**FULL, "GLASSBOX_SMOKE_DEADLINE": "soon"})


def test_nothing_configured_is_one_line(gs: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(gs.ConfigError) as raised:
        gs.load_settings({"GLASSBOX_ENV_FILE": str(tmp_path / "missing.env")})
    assert "\n" not in str(raised.value)
    assert "does not exist" in str(raised.value)


@pytest.mark.parametrize(
    ("server", "sdk", "verdict"),
    [
        ("4.16.0", "4.18.0", None),
        ("4.59.0", "4.18.0", None),
        ("4.15.9", "4.18.0", "the server is 4.15.9, older than 4.16.0"),
        ("4.16.0", "5.0.4", "the server is 4.16.0, older than 4.59.0"),
        ("4.58.3", "5.0.4", "the server is 4.58.3, older than 4.59.0"),
        ("4.59.0", "5.0.4", None),
        ("4.100.1", "5.0.4", None),
    ],
)
def test_server_floor_of_the_pinned_sdk(
    gs: ModuleType, server: str, sdk: str, verdict: str | None
) -> None:
    message = gs.server_too_old(server, sdk)
    if verdict is None:
        assert message is None
    else:
        assert verdict in message
        assert f"SDK {sdk}" in message


def test_unknown_sdk_major_is_reported(gs: ModuleType) -> None:
    assert "SDK 6.0.0" in gs.server_too_old("4.59.0", "6.0.0")


def test_trust_settings_come_from_the_file_and_are_exported(gs: ModuleType, tmp_path: Path) -> None:
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text("pem\n", encoding="ascii")
    env_file = tmp_path / "app.env"
    lines = [f"{k}={v}" for k, v in FULL.items()]
    lines += [
        f"GLASSBOX_CA_FILE={bundle}",
        f"SSL_CERT_FILE={bundle}",
        f"REQUESTS_CA_BUNDLE={bundle}",
    ]
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = gs.load_settings({"GLASSBOX_ENV_FILE": str(env_file)})
    environ: dict[str, str] = {}
    gs.export_trust(settings, environ)
    assert environ == {
        "GLASSBOX_CA_FILE": str(bundle),
        "SSL_CERT_FILE": str(bundle),
        "REQUESTS_CA_BUNDLE": str(bundle),
    }
    plain = gs.load_settings({**FULL, "GLASSBOX_ENV_FILE": ""})
    environ = {}
    gs.export_trust(plain, environ)
    assert environ == {}


def test_a_missing_ca_bundle_is_named(gs: ModuleType, tmp_path: Path) -> None:
    missing = tmp_path / "gone.pem"
    with pytest.raises(gs.ConfigError, match=f"SSL_CERT_FILE={missing}"):
        gs.load_settings({**FULL, "GLASSBOX_ENV_FILE": "", "SSL_CERT_FILE": str(missing)})


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTPS server answering GETs (/health only with the key), its certificate from a
    throwaway CA; yields its base URL and a trust bundle (that CA + certifi's roots, as connect
    writes it)."""
    ca = make_ca("smoke https test CA")
    leaf = make_leaf(ca, ["IP:127.0.0.1"])
    (tmp_path / "leaf.pem").write_text(leaf.cert_pem + leaf.key_pem, encoding="ascii")
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(ca.cert_pem + Path(certifi.where()).read_text("ascii"), encoding="ascii")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            # Like the TLS proxy: /health only with vLLM's key (FULL's OPENAI_API_KEY).
            if self.path == "/health" and self.headers.get("Authorization") != "Bearer vllm-1":
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"data": [{"id": "m"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", bundle
    server.shutdown()
    server.server_close()


def test_the_suite_verifies_https_with_the_app_env_bundle(
    gs: ModuleType, https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx (the suite, openai) and requests (the SDK's exporter) verify the internal CA once
    the app env's settings are exported, and refuse it without them (verification stays on)."""
    url, bundle = https_server
    for key in gs.TRUST_KEYS:
        monkeypatch.delenv(key, raising=False)
    env = {**FULL, "OPENAI_BASE_URL": f"{url}/v1", "GLASSBOX_ENV_FILE": ""}
    plain = gs.load_settings(env)
    with pytest.raises(pytest.fail.Exception, match="CERTIFICATE_VERIFY_FAILED"):
        gs.get_vllm_models(plain)
    trusted = gs.load_settings(
        {**env, "SSL_CERT_FILE": str(bundle), "REQUESTS_CA_BUNDLE": str(bundle)}
    )
    environ: dict[str, str] = {}
    gs.export_trust(trusted, environ)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert gs.get_vllm_models(trusted).json()["data"][0]["id"] == "m"
    assert gs.get_vllm_health(trusted).status_code == 200
    assert requests.get(f"{url}/v1/models", timeout=10).status_code == 200
