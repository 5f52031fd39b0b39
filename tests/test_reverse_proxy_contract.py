"""The proxy's contract, end to end on this machine: the reverse_proxy role renders its main
Caddyfile and the service sites (its own `render`, `sites` and `prune` entry points, real
ansible-playbook), the caddy binary from the distribution's package (extracted by
scripts/test-host.sh, never installed) validates them and then serves them in the foreground on
free high ports, in front of a small Python upstream, with a throwaway CA made here.

What must hold: TLS verifies against the CA (and not without it); plain HTTP redirects (308) to
https; on a vLLM site only /v1/* and /health with the right key reach the model (no key, a wrong
key, /tokenize and /invocations with the key: 401 from the proxy); /metrics only from the
allowed networks; Host is passed unchanged and X-Forwarded-Proto is https (Langfuse, MinIO);
nothing listens on UDP (no HTTP/3); the key never appears in Ansible's output.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ansible_run import local_inventory, play
from tests.proxy_harness import caddy_binary, make_ca

pytestmark = pytest.mark.roles

KEY = "sk-vllm-Contract.Test_key~1+/="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def caddy_bin() -> str:
    return caddy_binary()


class Upstream(http.server.ThreadingHTTPServer):
    """Answers every request with 200 and a JSON echo of its path and the headers it got."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def _echo(self) -> None:
                body = json.dumps(
                    {"upstream": True, "path": self.path, "headers": dict(self.headers)}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _echo

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


def site(name: str, port: int, upstream: int, **fields: object) -> dict:
    return {"name": name, "port": port, "upstream": f"127.0.0.1:{upstream}", **fields}


def sites(*specs: dict, **values: object) -> dict:
    """One call of the `sites` entry point with these site specs."""
    return {
        "name": "Sites " + " ".join(spec["name"] for spec in specs),
        "ansible.builtin.include_role": {"name": "reverse_proxy", "tasks_from": "sites"},
        "vars": {"reverse_proxy_sites": list(specs), **values},
    }


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, caddy_bin: str) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("proxy")
    tls_dir = tmp / "tls"
    make_ca(tls_dir, ["localhost"])
    upstream = Upstream()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    ports = {name: free_port() for name in ("http", "langfuse", "vllm", "vllm_nometrics", "media")}
    conf = tmp / "caddy"
    settings = {
        "glassbox_tls_dir": str(tls_dir),
        "glassbox_public_host": "localhost",
        "reverse_proxy_config_dir": str(conf),
        "reverse_proxy_caddy_bin": caddy_bin,
        "reverse_proxy_admin_socket": str(tmp / "admin" / "admin.sock"),
        "reverse_proxy_http_port": ports["http"],
        "reverse_proxy_https_port": ports["langfuse"],
        "reverse_proxy_group": "root",
        "reverse_proxy_reload": False,
    }
    main = {
        "name": "Main Caddyfile",
        "ansible.builtin.include_role": {"name": "reverse_proxy", "tasks_from": "render"},
    }
    # Sites left by an earlier run: a model site that the models' `sites` call below removes
    # (its prefix, not listed), and an old one that the `prune` entry point removes.
    earlier = [
        main,
        sites(
            site("vllm-gone", free_port(), upstream.port, bearer_key=KEY),
            site("old-site", free_port(), upstream.port),
        ),
    ]
    plays = [{"name": "Earlier run", "hosts": "all", "gather_facts": False, "tasks": earlier}]
    run = play(tmp / "earlier", plays, inventory=local_inventory(common=settings))
    assert run.rc == 0, run.output
    assert (conf / "sites.d" / "vllm-gone.caddy").exists()
    assert (conf / "sites.d" / "old-site.caddy").exists()
    tasks = [
        main,
        sites(
            site("langfuse", ports["langfuse"], upstream.port),
            site("langfuse-media", ports["media"], upstream.port),
        ),
        sites(
            site(
                "vllm-model-a",
                ports["vllm"],
                upstream.port,
                bearer_key=KEY,
                metrics_cidrs=["127.0.0.1/32", "::1/128"],
                flush=True,
            ),
            site("vllm-model-b", ports["vllm_nometrics"], upstream.port, bearer_key=KEY),
            reverse_proxy_prune_prefix="vllm-",
        ),
        {
            "name": "Prune the old sites no spec lists",
            "ansible.builtin.include_role": {"name": "reverse_proxy", "tasks_from": "prune"},
            "vars": {"reverse_proxy_prune_prefix": "old-"},
        },
        {
            "name": "Show the published ports",
            "ansible.builtin.debug": {"var": "reverse_proxy_ports"},
        },
    ]
    plays = [{"name": "Proxy files", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    run = play(tmp / "run", plays, inventory=local_inventory(common=settings))
    assert run.rc == 0, run.output
    # The same again on the files now in place: nothing changes, and each call's changes
    # (renders, removals, validation) are one skipped include.
    again = play(tmp / "again", plays, inventory=local_inventory(common=settings))
    assert again.rc == 0, again.output
    (tmp / "admin").mkdir()
    env = {**os.environ, "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data")}
    env.pop("XDG_CONFIG_HOME", None)
    log = (tmp / "caddy.log").open("w")
    server = subprocess.Popen(
        [caddy_bin, "run", "--adapter", "caddyfile", "--config", str(conf / "Caddyfile")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        pending = set(ports.values())
        while pending and time.monotonic() < deadline:
            assert server.poll() is None, (tmp / "caddy.log").read_text()
            for port in list(pending):
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        pending.discard(port)
            time.sleep(0.2)
        assert not pending, f"caddy did not listen on {pending}:\n{(tmp / 'caddy.log').read_text()}"
        yield {
            "ports": ports,
            "run": run,
            "again": again,
            "conf": conf,
            "tls_dir": tls_dir,
            "ca": str(tls_dir / "ca.crt"),
            "caddy": caddy_bin,
            "env": env,
            "pid": server.pid,
        }
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
        upstream.shutdown()


def get(
    proxy: dict,
    port_name: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    tls: bool = True,
    cafile: str | None = "",
) -> http.client.HTTPResponse:
    port = proxy["ports"][port_name]
    if tls:
        context = ssl.create_default_context(cafile=proxy["ca"] if cafile == "" else cafile)
        conn = http.client.HTTPSConnection("localhost", port, context=context, timeout=10)
    else:
        conn = http.client.HTTPConnection("localhost", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()  # type: ignore[attr-defined]
    conn.close()
    return response


def reaches_upstream(response: http.client.HTTPResponse) -> bool:
    if response.status != 200:
        return False
    try:
        return json.loads(response.body).get("upstream") is True  # type: ignore[attr-defined]
    except ValueError:
        return False


AUTH = {"Authorization": f"Bearer {KEY}"}


def test_the_distribution_caddy_validates_every_rendered_file(proxy):
    conf = proxy["conf"]
    names = sorted(p.name for p in (conf / "sites.d").glob("*.caddy"))
    assert names == [
        "langfuse-media.caddy",
        "langfuse.caddy",
        "vllm-model-a.caddy",
        "vllm-model-b.caddy",
    ]
    for path in [conf / "Caddyfile", *sorted((conf / "sites.d").glob("*.caddy"))]:
        proc = subprocess.run(
            [proxy["caddy"], "validate", "--adapter", "caddyfile", "--config", str(path)],
            capture_output=True,
            text=True,
            env=proxy["env"],
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"{path.name}: {proc.stderr[-2000:]}"


def test_a_keyed_site_file_is_a_secret_and_the_key_is_never_printed(proxy):
    keyed = proxy["conf"] / "sites.d" / "vllm-model-a.caddy"
    assert keyed.stat().st_mode & 0o777 == 0o640
    assert KEY in keyed.read_text()
    assert KEY not in proxy["run"].output


def test_published_ports_are_every_site_port_and_the_redirect_port(proxy):
    shown = [
        task["hosts"]["localhost"]["reverse_proxy_ports"]
        for each_play in proxy["run"].report["plays"]
        for task in each_play["tasks"]
        if task["task"]["name"] == "Show the published ports"
    ]
    assert shown == [sorted(proxy["ports"].values())]


def test_a_converged_rerun_changes_nothing_and_skips_each_calls_changes(proxy):
    """Second run on the files in place: changed=0, and each `sites` call (and `prune`) is one
    skipped include: no render, removal or `caddy validate` task is even evaluated."""
    again = proxy["again"]
    assert again.changed("localhost") == 0
    names = [
        (
            task["task"]["name"].removeprefix("reverse_proxy : "),
            task["hosts"]["localhost"].get("skipped", False),
        )
        for each_play in again.report["plays"]
        for task in each_play["tasks"]
        if "localhost" in task["hosts"]
    ]
    includes = [n for n in names if n[0].startswith("Check the sites, then render")]
    assert includes == [(includes[0][0], True)] * 2, names
    assert (
        "Remove the sites no longer wanted (when the probe found any, or no fresh read exists)",
        True,
    ) in names
    assert not [n for n in names if n[0].startswith(("Render each site", "Validate the whole"))]


def test_bad_site_specs_fail_naming_each_before_any_file_is_written(tmp_path):
    conf = tmp_path / "caddy"
    settings = {"reverse_proxy_config_dir": str(conf), "reverse_proxy_reload": False}
    tasks = [sites(site("web", 8443, 3000), site("web", 0, 3000))]
    plays = [{"name": "bad", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    run = play(tmp_path / "run", plays, inventory=local_inventory(common=settings))
    assert run.rc != 0
    message = " ".join(run.failures("localhost"))
    assert "reverse_proxy_sites[1].port is 0" in message
    assert 'reverse_proxy_sites[1].name "web" is given twice' in message
    assert not conf.exists()


def test_tls_verifies_against_the_ca_and_not_without_it(proxy):
    response = get(proxy, "langfuse", "/api/public/health")
    assert reaches_upstream(response)
    with pytest.raises(ssl.SSLCertVerificationError):
        get(proxy, "langfuse", "/", cafile=None)


def test_plain_http_redirects_to_https(proxy):
    response = get(proxy, "http", "/x?y=1", {"Host": "localhost"}, tls=False)
    assert response.status == 308
    assert response.getheader("Location") == "https://localhost/x?y=1"


def test_langfuse_gets_the_original_host_and_https_as_forwarded_proto(proxy):
    port = proxy["ports"]["media"]
    response = get(proxy, "media", "/bucket/object")
    assert reaches_upstream(response)
    headers = json.loads(response.body)["headers"]  # type: ignore[attr-defined]
    assert headers["Host"] == f"localhost:{port}"
    assert headers["X-Forwarded-Proto"] == "https"


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/models", {}),
        ("/v1/models", {"Authorization": "Bearer sk-vllm-wrong"}),
        ("/v1/models", {"Authorization": f"Bearer {KEY}x"}),
        ("/v1/models", {"Authorization": KEY}),
        ("/tokenize", AUTH),
        ("/invocations", AUTH),
        ("/version", AUTH),
        ("/docs", AUTH),
        ("/health", {}),
    ],
)
def test_vllm_site_refuses_without_the_key_or_off_the_allowed_paths(proxy, path, headers):
    response = get(proxy, "vllm", path, headers)
    assert response.status == 401, response.body  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions", "/health"])
def test_vllm_site_passes_the_allowed_paths_with_the_key(proxy, path):
    response = get(proxy, "vllm", path, AUTH)
    assert reaches_upstream(response)
    assert json.loads(response.body)["path"] == path  # type: ignore[attr-defined]


def test_metrics_only_from_the_allowed_networks(proxy):
    assert reaches_upstream(get(proxy, "vllm", "/metrics"))
    # A site without metrics_cidrs keeps /metrics behind the key rule (not a /v1 path: 401).
    assert get(proxy, "vllm_nometrics", "/metrics").status == 401
    assert get(proxy, "vllm_nometrics", "/metrics", AUTH).status == 401


def test_nothing_listens_on_udp(proxy):
    """HTTP/3 is off (servers { protocols h1 h2 }): caddy holds no UDP socket."""
    inodes = set()
    for fd in Path(f"/proc/{proxy['pid']}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    assert inodes, "caddy holds no sockets at all"
    udp = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            udp.add(line.split()[9])
    assert not inodes & udp


def test_reload_goes_through_the_admin_socket(proxy):
    """The unit's ExecReload (`caddy reload --config <Caddyfile> --force`) reaches the socket."""
    proc = subprocess.run(
        [proxy["caddy"], "reload", "--config", str(proxy["conf"] / "Caddyfile"), "--force"],
        capture_output=True,
        text=True,
        env=proxy["env"],
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert reaches_upstream(get(proxy, "vllm", "/v1/models", AUTH))


def test_acme_renders_without_tls_lines_and_validates(tmp_path, caddy_bin):
    """acme: global email + acme_ca, no `auto_https disable_certs`, sites without `tls`."""
    conf = tmp_path / "caddy"
    settings = {
        "glassbox_tls_source": "acme",
        "glassbox_public_host": "llm.example.org",
        "reverse_proxy_acme_email": "ops@example.org",
        "reverse_proxy_acme_ca": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "reverse_proxy_config_dir": str(conf),
        "reverse_proxy_caddy_bin": caddy_bin,
        "reverse_proxy_group": "root",
        "reverse_proxy_reload": False,
    }
    tasks = [
        {
            "name": "Main",
            "ansible.builtin.include_role": {"name": "reverse_proxy", "tasks_from": "render"},
        },
        sites(site("langfuse", 443, 3000)),
    ]
    plays = [{"name": "acme", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    run = play(tmp_path / "run", plays, inventory=local_inventory(common=settings))
    assert run.rc == 0, run.output
    main = (conf / "Caddyfile").read_text()
    assert "email ops@example.org" in main
    assert "acme_ca https://acme-staging-v02.api.letsencrypt.org/directory" in main
    assert "disable_certs" not in main
    text = (conf / "sites.d" / "langfuse.caddy").read_text()
    assert "llm.example.org:443 {" in text
    assert "\ttls " not in text


def _verify(proxy: dict, tmp: Path, tls_dir: Path):
    ports = proxy["ports"]
    settings = {
        "glassbox_tls_dir": str(tls_dir),
        "glassbox_public_host": "localhost",
        "reverse_proxy_http_port": ports["http"],
        "reverse_proxy_verify_ports": [ports["http"], ports["langfuse"], ports["vllm"]],
    }
    tasks = [
        {
            "name": "Verify",
            "ansible.builtin.include_role": {"name": "reverse_proxy", "tasks_from": "verify"},
        }
    ]
    plays = [{"name": "verify", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    return play(tmp, plays, inventory=local_inventory(common=settings))


def test_verify_entry_point_passes_with_the_ca_and_fails_without_it(proxy, tmp_path):
    good = _verify(proxy, tmp_path / "good", proxy["tls_dir"])
    assert good.rc == 0, good.output
    other = tmp_path / "other-ca"
    make_ca(other, ["localhost"])
    bad = _verify(proxy, tmp_path / "bad", other)
    assert bad.rc != 0
    message = " ".join(bad.failures("localhost"))
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert str(proxy["ports"]["langfuse"]) in message


def test_ports_entry_point_reads_every_site_on_disk(proxy, tmp_path):
    settings = {
        "reverse_proxy_config_dir": str(proxy["conf"]),
        "reverse_proxy_http_port": proxy["ports"]["http"],
    }
    tasks = [
        {
            "name": "Ports from disk",
            "ansible.builtin.include_role": {"name": "reverse_proxy", "tasks_from": "ports"},
        },
        {
            "name": "Show the published ports",
            "ansible.builtin.debug": {"var": "reverse_proxy_ports"},
        },
    ]
    plays = [{"name": "ports", "hosts": "all", "gather_facts": False, "tasks": tasks}]
    run = play(tmp_path, plays, inventory=local_inventory(common=settings))
    assert run.rc == 0, run.output
    shown = [
        task["hosts"]["localhost"]["reverse_proxy_ports"]
        for each_play in run.report["plays"]
        for task in each_play["tasks"]
        if task["task"]["name"] == "Show the published ports"
    ]
    assert shown == [sorted(proxy["ports"].values())]
