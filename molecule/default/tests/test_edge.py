"""The TLS edge of the converged target, seen from the controller as any client on the network
sees it: Caddy answers with a certificate from the internal CA kept under the inventory's
credentials/, plain HTTP is redirected, and vLLM's paths need the key at the proxy (the
services themselves are not started in this scenario, so a request the proxy lets through
ends in Caddy's 502: the upstream is down)."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

TLS_DIR = "/etc/glassbox/tls"
LANGFUSE_PORT = 443
MEDIA_PORT = 9090
MODEL_PORTS = (8000, 8001)


def credentials() -> Path:
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    assert inventory, "run through `molecule verify`: MOLECULE_INVENTORY_FILE is not set"
    return Path(inventory).parent / "credentials"


@pytest.fixture(scope="module")
def name(host):
    """The name clients use (glassbox_public_host's default: the inventory name)."""
    return host.ansible.get_variables()["inventory_hostname"]


@pytest.fixture(scope="module")
def address(host):
    """The target's IPv4 address on the outer Docker network (eth0; docker0 is the inner one)."""
    addresses = host.interface("eth0").addresses
    found = [a for a in addresses if ipaddress.ip_address(a).version == 4]
    assert found, "the target has no IPv4 address"
    return found[0]


@pytest.fixture(scope="module")
def ca_file() -> Path:
    path = credentials() / "tls" / "ca.crt"
    assert path.is_file(), f"the internal CA is not on the controller: {path}"
    return path


@pytest.fixture(scope="module")
def api_key(host) -> str:
    with host.sudo():
        return json.loads(host.file("/etc/glassbox/vllm/secrets.json").content_string)["api_key"]


def get(address, port, name, path, *, cafile=None, headers=None, tls=True):
    """One GET to address:port with Host (and SNI) = name; returns (status, headers, body)."""
    sock = socket.create_connection((address, port), timeout=10)
    if tls:
        context = ssl.create_default_context(cafile=str(cafile))
        sock = context.wrap_socket(sock, server_hostname=name)
    conn = http.client.HTTPConnection(address, port, timeout=10)
    conn.sock = sock
    host_header = name if port in (80, 443) else f"{name}:{port}"
    conn.request("GET", path, headers={"Host": host_header, **(headers or {})})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


def other_ca(tmp_path: Path) -> Path:
    """A CA nobody used: the proxy's certificate must not verify against it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the glassbox CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "other-ca.crt"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def test_the_host_holds_the_controllers_ca(host, ca_file):
    with host.sudo():
        on_host = host.file(f"{TLS_DIR}/ca.crt").content_string
        key = host.file(f"{TLS_DIR}/host.key")
        assert key.mode == 0o640
        assert key.group == "caddy"
    assert on_host == ca_file.read_text()
    # The CA's key never leaves the controller.
    with host.sudo():
        keys = host.run(f"grep -rl 'PRIVATE KEY' {TLS_DIR} /etc/caddy").stdout.split()
    assert keys == [f"{TLS_DIR}/host.key"], keys


@pytest.mark.parametrize("port", [LANGFUSE_PORT, MEDIA_PORT, *MODEL_PORTS])
def test_every_site_verifies_against_the_internal_ca(address, name, ca_file, port):
    status, headers, _ = get(address, port, name, "/api/public/health", cafile=ca_file)
    # Verified TLS reached Caddy; Langfuse, MinIO and vLLM are not started here.
    assert headers.get("server") == "Caddy", headers
    assert status in (401, 502), status


def test_the_certificate_does_not_verify_against_another_ca(address, name, tmp_path):
    with pytest.raises(ssl.SSLCertVerificationError):
        get(address, LANGFUSE_PORT, name, "/", cafile=other_ca(tmp_path))


def test_the_certificate_names_the_host_and_nothing_else(address, name, ca_file):
    sock = socket.create_connection((address, LANGFUSE_PORT), timeout=10)
    context = ssl.create_default_context(cafile=str(ca_file))
    with context.wrap_socket(sock, server_hostname=name) as tls:
        der = tls.getpeercert(binary_form=True)
    names = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.DNSName) == [name]
    # Another name gets no certificate that verifies (Caddy 2.6 ends the handshake).
    with pytest.raises(ssl.SSLError):
        get(address, LANGFUSE_PORT, "somebody-else.example", "/", cafile=ca_file)


def test_plain_http_is_redirected_to_https(address, name):
    status, headers, _ = get(address, 80, name, "/project/x?y=1", tls=False)
    assert status == 308, status
    assert headers["location"] == f"https://{name}/project/x?y=1"


def test_langfuse_reaches_web_through_the_proxy(address, name, ca_file):
    status, _, _ = get(address, LANGFUSE_PORT, name, "/", cafile=ca_file)
    assert status == 502, "the proxy should pass everything to Langfuse web (not started here)"


@pytest.mark.parametrize("port", MODEL_PORTS)
def test_vllm_paths_need_the_key_at_the_proxy(address, name, ca_file, api_key, port):
    bearer = {"Authorization": f"Bearer {api_key}"}
    wrong = {"Authorization": "Bearer sk-vllm-wrong"}
    # Without the key, with a wrong one, and every path vLLM's own key does not guard: 401.
    assert get(address, port, name, "/v1/models", cafile=ca_file)[0] == 401
    assert get(address, port, name, "/v1/models", cafile=ca_file, headers=wrong)[0] == 401
    for path in ("/tokenize", "/invocations", "/docs", "/ping"):
        assert get(address, port, name, path, cafile=ca_file, headers=bearer)[0] == 401, path
    # With the key, /v1/* and /health pass to vLLM (not started here: 502 from the proxy).
    assert get(address, port, name, "/v1/models", cafile=ca_file, headers=bearer)[0] == 502
    assert get(address, port, name, "/health", cafile=ca_file, headers=bearer)[0] == 502


@pytest.mark.parametrize("port", MODEL_PORTS)
def test_metrics_only_from_the_allowed_networks(address, name, ca_file, port):
    # vllm_metrics_cidrs defaults to loopback: the controller is outside it.
    assert get(address, port, name, "/metrics", cafile=ca_file)[0] == 403


def test_the_proxy_admin_endpoint_is_a_unix_socket(host):
    with host.sudo():
        assert host.socket("unix:///run/caddy/admin.sock").is_listening
        assert not host.socket("tcp://127.0.0.1:2019").is_listening
        assert not host.run("ss -lunH").stdout.strip(), "a UDP listener (HTTP/3?) is open"


def test_the_app_env_sends_clients_over_https_trusting_the_ca(address, name, ca_file):
    path = credentials() / "app.env"
    settings = dict(
        line.split("=", 1) for line in path.read_text().splitlines() if line and "=" in line
    )
    assert settings["LANGFUSE_BASE_URL"] == f"https://{name}"
    assert settings["OPENAI_BASE_URL"] == f"https://{name}:{MODEL_PORTS[0]}/v1"
    assert Path(settings["GLASSBOX_CA_FILE"]).read_text() == ca_file.read_text()
    assert settings["SSL_CERT_FILE"] == settings["REQUESTS_CA_BUNDLE"]
    bundle = Path(settings["SSL_CERT_FILE"]).read_text()
    assert ca_file.read_text().strip() in bundle
    assert bundle.count("BEGIN CERTIFICATE") > 10, "the bundle lost the public roots"
    # The bundle is what clients load: it verifies the proxy.
    _, headers, _ = get(address, LANGFUSE_PORT, name, "/", cafile=settings["SSL_CERT_FILE"])
    assert headers.get("server") == "Caddy"
