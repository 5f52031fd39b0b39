"""A stand-in for the Docker Engine API on a unix socket: volumes only.

Enough for community.docker.docker_volume (version negotiation, list, create, inspect, delete),
so tests of roles that create volumes run without a Docker daemon. Point DOCKER_HOST at
`unix://<socket>`. It keeps what it was asked in `requests` for the test to read.
"""

from __future__ import annotations

import json
import re
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

API_VERSION = "1.45"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    volumes: dict[str, dict[str, Any]]
    requests: list[str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *_args: object) -> None:
        return

    def address_string(self) -> str:
        return "unix"

    def _path(self) -> str:
        # /v1.45/volumes -> /volumes; query strings are ignored
        return re.sub(r"^/v[0-9.]+", "", self.path.split("?", 1)[0])

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = self._path()
        self.server.requests.append(f"GET {path}")
        if path == "/_ping":
            self._reply(200, "OK")
        elif path == "/version":
            self._reply(
                200, {"ApiVersion": API_VERSION, "MinAPIVersion": "1.24", "Version": "28.0.0"}
            )
        elif path == "/info":  # docker_host_info always reads it
            self._reply(200, {"ServerVersion": "28.0.0", "Name": "fake"})
        elif path == "/volumes":
            self._reply(200, {"Volumes": list(self.server.volumes.values()), "Warnings": None})
        elif (m := re.fullmatch(r"/volumes/([^/]+)", path)) and m.group(1) in self.server.volumes:
            self._reply(200, self.server.volumes[m.group(1)])
        else:
            self._reply(404, {"message": f"no such object: {path}"})

    def do_POST(self) -> None:
        path = self._path()
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(f"POST {path} {json.dumps(body, sort_keys=True)}")
        if path != "/volumes/create":
            self._reply(404, {"message": f"not supported here: {path}"})
            return
        volume = {
            "Name": body["Name"],
            "Driver": body.get("Driver") or "local",
            "Labels": body.get("Labels") or {},
            "Options": body.get("DriverOpts") or {},
            "Mountpoint": f"/var/lib/docker/volumes/{body['Name']}/_data",
            "Scope": "local",
        }
        self.server.volumes[volume["Name"]] = volume
        self._reply(201, volume)

    def do_DELETE(self) -> None:
        path = self._path()
        self.server.requests.append(f"DELETE {path}")
        m = re.fullmatch(r"/volumes/([^/]+)", path)
        if m and self.server.volumes.pop(m.group(1), None) is not None:
            self._reply(204)
        else:
            self._reply(404, {"message": f"no such volume: {path}"})


class FakeDockerAPI:
    """Context manager: serves on `socket` until exit; `docker_host` is the DOCKER_HOST value."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self._server = _Server(str(socket), _Handler)
        self._server.volumes = {}
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def volumes(self) -> dict[str, dict[str, Any]]:
        return self._server.volumes

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def __enter__(self) -> FakeDockerAPI:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.socket.unlink(missing_ok=True)
