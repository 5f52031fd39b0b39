"""Start the real Langfuse v4 (web + worker from source) on this machine, configured by the role.

Stores: PostgreSQL and Redis (Debian's, installed when missing), the ClickHouse engine (chDB)
behind the test-only HTTP front (clickhouse_front.py), moto as the S3 server. Everything binds
127.0.0.1 on free ports and is a child of this process; `stop()` ends all of it.

The Langfuse environment is what roles/langfuse renders (its own templates, its own secrets
handling via glassbox_secrets, run by ansible-playbook through render.yml here). Each service's
environment is read from the rendered compose file (env_file list, then `environment`), and only
store addresses and listen ports are replaced. So a variable the role names or shapes wrongly
reaches the real Langfuse exactly as a deploy would hand it over.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from tests.ansible_run import local_inventory, play
from tests.realstack.build import BuiltTree, ensure_built, install_debian_packages, log_tail, say

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
LOCAL = "127.0.0.1"
# The role's compose services for the stores, with the container ports Langfuse is pointed at.
STORE_ADDRESSES = {
    ("postgres", 5432): "postgres",
    ("clickhouse", 8123): "clickhouse",
    # Native protocol: only the web image's entrypoint (golang-migrate) uses it; nothing listens
    # here, the harness applies the ClickHouse migrations through chDB itself.
    ("clickhouse", 9000): "clickhouse-native",
    ("redis", 6379): "redis",
    ("minio", 9000): "s3",
}
WEB_SERVICE = "langfuse-web"
WORKER_SERVICE = "langfuse-worker"
WORKER_GRACE_S = 5.0
WEB_START_TIMEOUT_S = 900.0


class StackError(RuntimeError):
    """A component did not come up; str() is one line naming it, then its log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return sock.getsockname()[1]


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian's postgresql packages keep the server binaries off PATH.
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def ensure_store_binaries(log: Path) -> dict[str, str]:
    wanted = {"redis-server": "redis-server", "initdb": "postgresql", "pg_ctl": "postgresql"}
    wanted["psql"] = "postgresql-client"
    missing = sorted({pkg for name, pkg in wanted.items() if not find_binary(name)})
    if missing:
        install_debian_packages(missing, log)
    found = {name: find_binary(name) for name in wanted}
    absent = [name for name, path in found.items() if not path]
    if absent:
        raise StackError(f"stores: {', '.join(absent)} not found after installing {missing}")
    return {name: str(path) for name, path in found.items()}


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Compose reads an env_file (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value
    return env


def service_env(compose_file: Path, service: str) -> dict[str, str]:
    """A service's environment as Compose builds it: env_file entries in order, then
    `environment` (mapping or KEY=VALUE list). Compose's ${} interpolation is not applied."""
    spec = yaml.safe_load(compose_file.read_text(encoding="utf-8"))["services"][service]
    env: dict[str, str] = {}
    files = spec.get("env_file") or []
    for entry in [files] if isinstance(files, str | dict) else files:
        path = entry["path"] if isinstance(entry, dict) else entry
        env.update(parse_env_file(compose_file.parent / path))
    extra = spec.get("environment") or {}
    if isinstance(extra, list):
        extra = dict(item.partition("=")[::2] for item in extra)
    env.update({k: "" if v is None else str(v) for k, v in extra.items()})
    return env


def localise(env: dict[str, str], ports: dict[str, int]) -> dict[str, str]:
    """Replace the role's store addresses (compose service:port) by this machine's."""
    out = {}
    for key, original in env.items():
        value = original
        for (host, port), store in STORE_ADDRESSES.items():
            value = re.sub(rf"(?<=[/@]){host}:{port}\b", f"{LOCAL}:{ports[store]}", value)
        out[key] = value
    # host/port pairs given as two variables (REDIS_HOST=redis, REDIS_PORT=6379)
    for key, value in env.items():
        if not key.endswith("_HOST"):
            continue
        for (host, port), store in STORE_ADDRESSES.items():
            port_key = key[: -len("_HOST")] + "_PORT"
            if value == host and env.get(port_key) == str(port):
                out[key], out[port_key] = LOCAL, str(ports[store])
    return out


@dataclass
class Component:
    name: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    handle: IO[bytes] | None = None

    def start(self, argv: list[str], env: dict[str, str], cwd: Path, user: str = "") -> None:
        self.handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user or None,
        )

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            # The Langfuse worker ignores SIGTERM (measured): give it the grace period, then kill.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass
        if self.handle:
            self.handle.close()


def http_ok(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - local URL
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


@dataclass(frozen=True)
class LLMEndpoint:
    base_url: str
    api_key: str
    model: str


@dataclass
class RealStack:
    """The running stack. `start()` builds (cached), renders, starts, waits; `stop()` ends it."""

    run_dir: Path
    llm: LLMEndpoint
    # Where ansible finds the roles (default: this repository's); a test points it at a copy
    # with a deliberately broken template.
    roles_dir: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)
    built: BuiltTree | None = None
    app_env_file: Path | None = None
    version: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    _pg_ctl: str = ""
    _pg_data: Path | None = None
    _pg_user: str = ""
    _web_lock: IO[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOCAL}:{self.ports['web']}"

    @property
    def worker_url(self) -> str:
        return f"http://{LOCAL}:{self.ports['worker']}"

    def component(self, name: str) -> Component:
        comp = Component(name, self.run_dir / "logs" / f"{name}.log")
        self.components.append(comp)
        return comp

    def fail(self, comp: Component | str, why: str) -> StackError:
        name = comp if isinstance(comp, str) else comp.name
        log = self.run_dir / "logs" / f"{name}.log"
        return StackError(f"realstack: {name} did not come up: {why}; log {log}:\n{log_tail(log)}")

    def wait_http(
        self, comp: Component, url: str, timeout: float, want: str = "", probe_s: float = 5.0
    ) -> str:
        deadline = time.monotonic() + timeout
        status, body = 0, ""
        while time.monotonic() < deadline:
            if comp.proc is not None and comp.proc.poll() is not None:
                raise self.fail(comp, f"exited with {comp.proc.returncode}")
            status, body = http_ok(url, min(probe_s, max(1.0, deadline - time.monotonic())))
            if status == 200 and want in body:
                return body
            time.sleep(0.3)
        raise self.fail(comp, f"{url} answered {status} {body[:200]!r} after {timeout:.0f} s")

    # --- the steps -------------------------------------------------------------------------

    def start(self) -> RealStack:
        t0 = time.monotonic()
        (self.run_dir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self.built = ensure_built()
            self.timings["build"] = time.monotonic() - t0
            binaries = ensure_store_binaries(self.run_dir / "logs" / "apt.log")
            for name in ("web", "worker", *sorted(set(STORE_ADDRESSES.values()))):
                self.ports[name] = free_port()
            t1 = time.monotonic()
            compose = self.render()
            self.timings["render"] = time.monotonic() - t1
            t1 = time.monotonic()
            web_env = localise(service_env(compose, WEB_SERVICE), self.ports)
            worker_env = localise(service_env(compose, WORKER_SERVICE), self.ports)
            self.start_postgres(binaries, compose)
            self.start_redis(binaries["redis-server"], compose)
            self.start_s3(worker_env)
            self.start_clickhouse()
            self.timings["stores"] = time.monotonic() - t1
            self.start_langfuse(web_env, worker_env)
            self.timings["total"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items() if k != "total")
        say(
            f"Langfuse {self.version} up at {self.base_url} in {self.timings['total']:.1f} s "
            f"({steps}); app env file {self.app_env_file}"
        )
        return self

    def render(self) -> Path:
        """The role's own render tasks and connect.yml, by ansible-playbook, into run_dir."""
        hosts = {
            "realstack-langfuse": {
                "langfuse_project_dir": str(self.run_dir / "langfuse"),
                "langfuse_secrets_file": str(self.run_dir / "secrets.json"),
                # Plain HTTP straight to web (the TLS proxy path is not wired into this
                # harness yet).
                "glassbox_tls": False,
                "langfuse_public_url": self.base_url,
                "langfuse_web_port": self.ports["web"],
                "langfuse_worker_port": self.ports["worker"],
            },
            "realstack-llm": {
                "realstack_llm": {
                    "base_url": self.llm.base_url,
                    "api_key": self.llm.api_key,
                    "models": [self.llm.model],
                }
            },
        }
        groups = {"observability": ["realstack-langfuse"], "inference": ["realstack-llm"]}
        # the inventory's directory holds credentials/ (connect.yml writes app.env there)
        inventory = self.run_dir / "inventory"
        proc = play(
            inventory,
            HERE / "render.yml",
            inventory=local_inventory(hosts, groups=groups),
            report=False,
            cwd=self.run_dir,
            env={
                "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
                "ANSIBLE_ROLES_PATH": str(self.roles_dir or REPO_ROOT / "roles"),
            },
        )
        log = self.run_dir / "logs" / "render.log"
        log.write_text(proc.output, encoding="utf-8")
        if proc.rc != 0:
            raise self.fail("render", f"roles/langfuse render failed (exit {proc.rc})")
        self.app_env_file = inventory / "credentials" / "app.env"
        return self.run_dir / "langfuse" / "compose.yaml"

    def start_postgres(self, binaries: dict[str, str], compose: Path) -> None:
        comp = self.component("postgres")
        env = service_env(compose, "postgres")
        user, password, db = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
        # PostgreSQL refuses to run as root: run it as the `postgres` account, else `nobody`,
        # in a directory of its own (a pytest tmp_path is not reachable for another user).
        run_as = "" if os.geteuid() != 0 else ("postgres" if _has_user("postgres") else "nobody")
        data = Path(tempfile.mkdtemp(prefix="glassbox-realstack-pg-"))
        pwfile = data.parent / f"{data.name}.pw"
        pwfile.write_text(password + "\n", encoding="utf-8")
        pwfile.chmod(0o600)
        if run_as:
            shutil.chown(data, run_as)
            shutil.chown(pwfile, run_as)
        quiet = {**os.environ, "LC_ALL": "C.UTF-8"}

        def as_server_user(argv: list[str]) -> int:
            """Run a PostgreSQL server tool as run_as, its output appended to the log."""
            with comp.log.open("ab") as out:
                return subprocess.run(
                    argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    user=run_as or None,
                    env=quiet,
                    check=False,
                ).returncode

        rc = as_server_user(
            [
                binaries["initdb"],
                "-D",
                str(data),
                "-U",
                user,
                "--pwfile",
                str(pwfile),
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
            ]
        )
        pwfile.unlink()
        if rc != 0:
            raise self.fail(comp, f"initdb exit {rc}")
        port = self.ports["postgres"]
        options = f"-c listen_addresses={LOCAL} -p {port} -k {data} -c fsync=off"
        self._pg_ctl, self._pg_data, self._pg_user = binaries["pg_ctl"], data, run_as
        rc = as_server_user(
            [
                binaries["pg_ctl"],
                "-D",
                str(data),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "-l",
                str(data / "server.log"),
                "start",
            ]
        )
        if rc != 0:
            raise self.fail(comp, f"pg_ctl start exit {rc}: {log_tail(data / 'server.log', 5)}")
        pg_env = {**quiet, "PGPASSWORD": password}
        base = [binaries["psql"], "-h", LOCAL, "-p", str(port), "-U", user, "-q"]
        with comp.log.open("ab") as out:
            exists = subprocess.run(
                [
                    *base,
                    "-d",
                    "postgres",
                    "-tAc",
                    f"SELECT 1 FROM pg_database WHERE datname='{db}'",  # noqa: S608 - the role's db name,
                ],
                env=pg_env,
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            if exists != "1":
                subprocess.run(
                    [*base, "-d", "postgres", "-c", f'CREATE DATABASE "{db}"'],
                    env=pg_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=True,
                )
            assert self.built is not None
            migrations = sorted(
                (self.built.root / "packages/shared/prisma/migrations").glob("*/migration.sql")
            )
            files = [arg for path in migrations for arg in ("-f", str(path))]
            # Without Prisma's schema engine there is no `prisma migrate deploy` (see the patch).
            rc = subprocess.run(
                [*base, "-d", db, "-v", "ON_ERROR_STOP=1", *files],
                env=pg_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        if rc != 0:
            raise self.fail(comp, f"PostgreSQL migrations failed (psql exit {rc})")
        say(f"postgres up on {port}, {len(migrations)} migrations applied")

    def start_redis(self, redis_server: str, compose: Path) -> None:
        comp = self.component("redis")
        password = service_env(compose, "redis")["REDIS_PASSWORD"]
        data = self.run_dir / "redis"
        data.mkdir(exist_ok=True)
        conf = data / "redis.conf"
        # The password goes in a 0600 config file, never on a command line.
        conf.write_text(
            f"bind {LOCAL}\nport {self.ports['redis']}\nrequirepass {password}\n"
            f'dir {data}\nsave ""\nappendonly no\nmaxmemory-policy noeviction\n',
            encoding="utf-8",
        )
        conf.chmod(0o600)
        comp.start([redis_server, str(conf)], dict(os.environ), data)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if comp.proc and comp.proc.poll() is not None:
                raise self.fail(comp, f"exited with {comp.proc.returncode}")
            try:
                with socket.create_connection((LOCAL, self.ports["redis"]), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise self.fail(comp, "no listener after 20 s")

    def start_s3(self, worker_env: dict[str, str]) -> None:
        comp = self.component("s3")
        port = self.ports["s3"]
        argv = [sys.executable, "-m", "moto.server", "-H", LOCAL, "-p", str(port)]
        comp.start(argv, dict(os.environ), self.run_dir)
        self.wait_http(comp, f"http://{LOCAL}:{port}/moto-api/", 60)
        # Langfuse never creates its buckets (the role's minio-init does): create them first.
        buckets = sorted(
            {v for k, v in worker_env.items() if re.fullmatch(r"LANGFUSE_S3_\w+_BUCKET", k)}
        )
        for bucket in buckets:
            request = urllib.request.Request(f"http://{LOCAL}:{port}/{bucket}", method="PUT")
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - local URL
                pass
        say(f"S3 (moto) up on {port}, buckets {', '.join(buckets)}")

    def start_clickhouse(self) -> None:
        comp = self.component("clickhouse")
        assert self.built is not None
        migrations = self.built.root / "packages/shared/clickhouse/migrations/unclustered"
        argv = [sys.executable, "-m", "tests.realstack.clickhouse_front"]
        argv += ["--data", str(self.run_dir / "chdb"), "--port", str(self.ports["clickhouse"])]
        argv += ["--migrations", str(migrations)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        comp.start(argv, env, self.run_dir)
        self.wait_http(comp, f"http://{LOCAL}:{self.ports['clickhouse']}/ping", 120)
        port = self.ports["clickhouse"]
        say(f"ClickHouse engine (chDB) behind the test-only HTTP front up on {port}")

    def start_langfuse(self, web_env: dict[str, str], worker_env: dict[str, str]) -> None:
        assert self.built is not None
        tool = self.built.toolchain
        t0 = time.monotonic()
        # Processes started by hand bind where HOSTNAME says (Docker sets it to the container
        # id); listen on loopback only.
        worker = self.component("langfuse-worker")
        env = tool.env(**{**worker_env, "HOSTNAME": LOCAL, "PORT": str(self.ports["worker"])})
        node = str(tool.node_bin / "node")
        worker.start([node, "dist/index.js"], env, self.built.root / "worker")
        # The worker first: it validates the env the role rendered and exits on a bad one, so a
        # misnamed variable is reported with the worker's own message before web compiles.
        self.wait_http(worker, f"{self.worker_url}/api/health", 180, "ok")
        self.timings["worker"] = time.monotonic() - t0
        web = self.component("langfuse-web")
        # `next dev` keeps its state in the built tree's web/.next: one web per tree at a time.
        self._web_lock = (self.built.root / ".glassbox-web.lock").open("w")
        try:
            fcntl.flock(self._web_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self.fail(
                web, f"another real stack runs `next dev` from {self.built.root}; stop it first"
            ) from None
        env = tool.env(**{**web_env, "HOSTNAME": LOCAL, "PORT": str(self.ports["web"])})
        next_bin = str(self.built.root / "web" / "node_modules" / ".bin" / "next")
        web.start(
            [next_bin, "dev", "-H", LOCAL, "-p", str(self.ports["web"])],
            env,
            self.built.root / "web",
        )
        health = f"{self.base_url}/api/public/health?failIfDatabaseUnavailable=true"
        # `next dev` compiles each route on its first request: minutes on a busy 2-core machine
        # the first time, seconds once its cache (in the built tree) is warm.
        body = self.wait_http(web, health, WEB_START_TIMEOUT_S, '"OK"', probe_s=120)
        self.version = json.loads(body).get("version", "")
        self.timings["web"] = time.monotonic() - t0
        if worker.proc is not None and worker.proc.poll() is not None:
            raise self.fail(worker, f"exited with {worker.proc.returncode}")
        self.warm_routes(web)

    # The public API routes `pytest smoke` uses. `next dev` compiles a route on its first
    # request, which can take longer than the SDK's 5 s export timeout on a busy machine.
    WARM_ROUTES = (
        ("GET", "/api/public/projects", None),
        ("POST", "/api/public/otel/v1/traces", b""),
        ("POST", "/api/public/ingestion", b'{"batch": []}'),
        ("GET", "/api/public/v2/observations?limit=1", None),
        ("GET", "/api/public/v3/scores?limit=1", None),
    )

    def warm_routes(self, web: Component) -> None:
        """Request each route once (any answer will do) so it is compiled before the tests."""
        assert self.app_env_file is not None
        values = dict(
            line.split("=", 1) for line in self.app_env_file.read_text().splitlines() if "=" in line
        )
        token = base64.b64encode(
            f"{values['LANGFUSE_PUBLIC_KEY']}:{values['LANGFUSE_SECRET_KEY']}".encode()
        ).decode()
        t0 = time.monotonic()
        for method, path, body in self.WARM_ROUTES:
            request = urllib.request.Request(f"{self.base_url}{path}", data=body, method=method)  # noqa: S310 - local URL
            request.add_header("Authorization", f"Basic {token}")
            request.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(request, timeout=600):  # noqa: S310 - local URL
                    pass
            except urllib.error.HTTPError:
                pass  # compiled; the answer itself does not matter
            except OSError as exc:
                raise self.fail(web, f"{method} {path} got no answer ({exc})") from exc
        self.timings["warm_routes"] = time.monotonic() - t0
        say(f"compiled the API routes the smoke suite uses in {self.timings['warm_routes']:.1f} s")
        say(f"Langfuse web {self.version} and worker healthy")

    def stop(self) -> None:
        for comp in reversed(self.components):
            comp.stop(WORKER_GRACE_S if comp.name == "langfuse-worker" else 5.0)
        if self._web_lock is not None:
            self._web_lock.close()
            self._web_lock = None
        if self._pg_data is not None and (self._pg_data / "postmaster.pid").exists():
            subprocess.run(
                [self._pg_ctl, "-D", str(self._pg_data), "-m", "fast", "-w", "stop"],
                user=self._pg_user or None,
                capture_output=True,
                check=False,
            )
        if self._pg_data is not None:
            shutil.rmtree(self._pg_data, ignore_errors=True)
            self._pg_data = None


def _has_user(name: str) -> bool:
    import pwd  # noqa: PLC0415 - only needed as root

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
