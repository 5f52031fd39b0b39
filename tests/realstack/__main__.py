"""The real-stack harness: `python -m tests.realstack up|down|env|build`.

  up     build (cached), start the stand-in LLM and the real Langfuse stack, print where
         everything is, keep running until Ctrl-C / SIGTERM, then stop all of it
  env    print the app env file of the running stack (for `GLASSBOX_ENV_FILE=... pytest smoke`)
  down   stop what a previous `up` left running (it recorded its process groups)
  build  only build (or find cached) the Langfuse tree

The run directory is GLASSBOX_REALSTACK_DIR, else ~/.cache/glassbox/realstack/run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests.realstack.build import BuildError, cache_root, ensure_built
from tests.realstack.stack import LLMEndpoint, RealStack, StackError
from tests.standin.harness import LLM_API_KEY, SERVED_MODEL
from tests.standin.llm_server import LLMServerProcess


def run_dir() -> Path:
    return Path(os.environ.get("GLASSBOX_REALSTACK_DIR") or cache_root() / "run")


def state_file() -> Path:
    return run_dir() / "state.json"


def down() -> int:
    try:
        state = json.loads(state_file().read_text())
    except OSError:
        print("realstack: nothing recorded as running")
        return 0
    for pgid in state.get("process_groups", []):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            threading.Event().wait(3)
    pg = state.get("postgres")
    if pg and Path(pg["data"], "postmaster.pid").exists():
        subprocess.run(
            [pg["pg_ctl"], "-D", pg["data"], "-m", "fast", "-w", "stop"],
            user=pg["user"] or None,
            check=False,
        )
    if pg:
        shutil.rmtree(pg["data"], ignore_errors=True)
    state_file().unlink()
    print("realstack: stopped")
    return 0


def up() -> int:
    if state_file().exists():
        down()
    directory = run_dir()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    llm = LLMServerProcess(
        api_key=LLM_API_KEY, alias=SERVED_MODEL, log_path=directory / "llm-server.log"
    ).start()
    stack = RealStack(directory, LLMEndpoint(llm.base_url, LLM_API_KEY, SERVED_MODEL))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        stack.start()
        state = {
            "process_groups": [c.proc.pid for c in stack.components if c.proc],
            "postgres": {
                "pg_ctl": stack._pg_ctl,
                "data": str(stack._pg_data),
                "user": stack._pg_user,
            },
            "app_env_file": str(stack.app_env_file),
            "base_url": stack.base_url,
        }
        state_file().write_text(json.dumps(state), encoding="utf-8")
        print(f"  Langfuse {stack.version}: {stack.base_url} (worker {stack.worker_url})")
        print(f"  stand-in LLM: {llm.base_url}")
        print(f"  app env file: {stack.app_env_file}")
        print(f"  logs: {directory / 'logs'}")
        print(f"  try: GLASSBOX_ENV_FILE={stack.app_env_file} .venv/bin/pytest smoke")
        print("  Ctrl-C stops everything", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()
    except (BuildError, StackError) as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        stack.stop()
        llm.stop()
        state_file().unlink(missing_ok=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.realstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "build"])
    args = parser.parse_args()
    if args.command == "up":
        return up()
    if args.command == "down":
        return down()
    if args.command == "env":
        try:
            print(json.loads(state_file().read_text())["app_env_file"])
        except OSError:
            print("realstack: not running (start it with `make realstack`)", file=sys.stderr)
            return 1
        return 0
    try:
        print(ensure_built().root)
    except BuildError as exc:
        print(f"realstack: build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
