#!/usr/bin/env python3
"""Probe the proxy from the host itself: every TLS port must present a certificate that verifies
for the public name (against the given CA, or the system's trust store), and the HTTP port must
redirect to https. Connects to 127.0.0.1 with the public name as SNI and Host, so no DNS is needed.

usage: tls_probe.py NAME CAFILE|- HTTP_PORT|0 TLS_PORT...
Prints one JSON line per port; exits 1 when any check fails.
"""

import datetime
import http.client
import json
import socket
import ssl
import sys


def tls_port(name: str, cafile: str | None, port: int) -> dict:
    context = ssl.create_default_context(cafile=cafile)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            cert = tls.getpeercert()
    except (OSError, ssl.SSLError) as exc:
        return {"port": port, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    not_after = datetime.datetime.fromtimestamp(
        ssl.cert_time_to_seconds(cert["notAfter"]), tz=datetime.UTC
    )
    days = (not_after - datetime.datetime.now(tz=datetime.UTC)).days
    return {"port": port, "ok": True, "not_after": not_after.isoformat(), "days_left": days}


def http_port(name: str, port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/glassbox-probe", headers={"Host": name})
        response = conn.getresponse()
        location = response.getheader("Location") or ""
    except OSError as exc:
        return {"port": port, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        conn.close()
    ok = response.status == 308 and location.startswith(f"https://{name}")
    return {"port": port, "ok": ok, "status": response.status, "location": location}


def main() -> int:
    name, cafile, redirect, *ports = sys.argv[1:]
    results = [tls_port(name, None if cafile == "-" else cafile, int(p)) for p in ports]
    if int(redirect):
        results.append(http_port(name, int(redirect)))
    for result in results:
        print(json.dumps(result))
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
