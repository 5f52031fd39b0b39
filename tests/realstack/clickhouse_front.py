"""TEST-ONLY HTTP front for the ClickHouse engine (chDB): not a ClickHouse server.

chDB (PyPI `chdb-core`) is the real ClickHouse engine as a library; it cannot listen on a port.
Langfuse talks to ClickHouse over HTTP (`CLICKHOUSE_URL`, @clickhouse/client), so this front
speaks the part of ClickHouse's HTTP interface that Langfuse uses, over one persistent chDB
data directory: `GET /ping`; the query from `query=` and/or the request body (chunked and gzip
bodies occur); `param_<name>` query parameters; the output format from the query's own FORMAT
clause or `default_format`; other query-string keys are server settings and are ignored
(`wait_end_of_query`, `send_progress_in_http_headers`, ...); errors as HTTP 500 (404 for an
unknown table) with `Code: N. DB::Exception: ...` and `X-ClickHouse-Exception-Code`. It ignores
authentication. Measured behaviour behind each point: ../shared/reference/real-langfuse.md.

Run: python -m tests.realstack.clickhouse_front --data DIR --port N [--migrations DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import threading
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from chdb import session as chdb_session

ERROR_CODE = re.compile(r"Code: (\d+)\.")
FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
INSERT_FORMAT = re.compile(r"^\s*INSERT\b.*?\bFORMAT\s+(\w+)", re.IGNORECASE | re.DOTALL)
UNKNOWN_TABLE = 60


class Engine:
    """One chDB session over a data directory; chDB sessions are not thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._session = chdb_session.Session(str(data_dir))
        self._lock = threading.Lock()

    def query(self, sql: str, fmt: str, params: dict[str, str]) -> bytes:
        with self._lock:
            result = self._session.query(sql, fmt, params=params or None)
        return result.bytes()

    def close(self) -> None:
        with self._lock:
            self._session.close()


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        body = b"".join(chunks)
    else:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    encoding = handler.headers.get("Content-Encoding", "").lower()
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    return body


def make_handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if urlsplit(self.path).path.rstrip("/") == "/ping":
                self.reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                return
            self.handle_query(b"")

        def do_POST(self) -> None:
            self.handle_query(read_body(self))

        def handle_query(self, body: bytes) -> None:
            query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            params = {k[len("param_") :]: v for k, v in query.items() if k.startswith("param_")}
            text = query.get("query", "")
            sql = f"{text}\n{body.decode('utf-8')}" if text and body else text or body.decode()
            query_id = query.get("query_id") or str(uuid.uuid4())
            match = None if INSERT_FORMAT.match(sql) else FORMAT_CLAUSE.search(sql)
            fmt = match.group(1) if match else query.get("default_format", "TabSeparated")
            headers = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Format": fmt}
            try:
                out = engine.query(sql, fmt, params)
            except Exception as exc:  # chDB raises RuntimeError with ClickHouse's message
                message = str(exc)
                code_match = ERROR_CODE.search(message)
                code = int(code_match.group(1)) if code_match else 1000
                headers["X-ClickHouse-Exception-Code"] = str(code)
                headers["Content-Type"] = "text/plain; charset=UTF-8"
                status = 404 if code == UNKNOWN_TABLE else 500
                self.reply(status, message.encode() + b"\n", headers)
                return
            summary = {"read_rows": "0", "read_bytes": "0", "written_rows": "0"}
            headers["X-ClickHouse-Summary"] = json.dumps(summary)
            headers["Content-Type"] = "text/plain; charset=UTF-8"
            self.reply(200, out, headers)

    return Handler


def serve(engine: Engine, port: int, host: str = "127.0.0.1") -> None:
    server = ThreadingHTTPServer((host, port), make_handler(engine))
    try:
        server.serve_forever()
    finally:
        engine.close()


def apply_migrations(engine: Engine, migrations: Path) -> int:
    """Apply upstream's unclustered *.up.sql in name order (golang-migrate's job in the images)."""
    count = 0
    for path in sorted(migrations.glob("*.up.sql")):
        for statement in path.read_text(encoding="utf-8").split(";"):
            if statement.strip():
                try:
                    engine.query(statement, "TabSeparated", {})
                except RuntimeError as exc:
                    raise RuntimeError(f"ClickHouse migration {path.name}: {exc}") from exc
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--migrations", type=Path, help="apply *.up.sql from here, then serve")
    args = parser.parse_args()
    engine = Engine(args.data)
    if args.migrations:
        count = apply_migrations(engine, args.migrations)
        print(f"applied {count} ClickHouse migration statements", flush=True)
    try:
        serve(engine, args.port)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
