"""Wall time of the whole `pytest smoke` run, against the real Langfuse or the stand-in double.

`--real`: starts the real-stack harness (tests/realstack: the real Langfuse from source plus the
stand-in LLM), prints its start-up time (cold = built now, warm = cached tree), runs the suite.
`--env-file PATH`: runs against an already running stack (e.g. `make realstack`).
Default: the real local LLM server and the Langfuse contract double (as `pytest tests` did).
The suite runs in a child process `--runs` times; each wall time is printed.

    python benchmarks/smoke_walltime.py [--real | --env-file PATH] [--runs 1] [--ingest-delay 0]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--ingest-delay", type=float, default=0.0, help="seconds before ingested data is readable"
    )
    parser.add_argument("--real", action="store_true", help="start the real-stack harness")
    parser.add_argument("--env-file", type=Path, help="app env file of a running stack")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from tests.standin.harness import LLM_API_KEY, SERVED_MODEL, AppEnv  # noqa: PLC0415
    from tests.standin.langfuse_double import DoubleConfig, LangfuseDouble  # noqa: PLC0415
    from tests.standin.llm_server import LLMServerProcess  # noqa: PLC0415

    if args.env_file:
        run_suite(args.env_file, args.runs)
        return
    if args.real:
        from tests.realstack.stack import LLMEndpoint, RealStack  # noqa: PLC0415

        with tempfile.TemporaryDirectory() as tmp:
            tmp_dir = Path(tmp)
            with LLMServerProcess(
                api_key=LLM_API_KEY, alias=SERVED_MODEL, log_path=tmp_dir / "llm.log"
            ) as llm:
                endpoint = LLMEndpoint(llm.base_url, LLM_API_KEY, SERVED_MODEL)
                stack = RealStack(tmp_dir / "stack", endpoint)
                started = time.perf_counter()
                stack.start()
                try:
                    kind = "cold (built now)" if stack.built and stack.built.cold else "warm"
                    times = ", ".join(f"{k} {v:.1f} s" for k, v in stack.timings.items())
                    print(
                        f"real stack (Langfuse {stack.version}) up in "
                        f"{time.perf_counter() - started:.1f} s, {kind}: {times}"
                    )
                    assert stack.app_env_file is not None
                    run_suite(stack.app_env_file, args.runs)
                finally:
                    stack.stop()
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        started = time.perf_counter()
        with (
            LLMServerProcess(
                api_key=LLM_API_KEY, alias=SERVED_MODEL, log_path=tmp_dir / "llm.log"
            ) as llm,
            LangfuseDouble(DoubleConfig(ingest_delay_s=args.ingest_delay)) as double,
        ):
            print(f"stand-in stack up in {time.perf_counter() - started:.1f} s")
            env_file = AppEnv(
                langfuse_base_url=double.base_url,
                langfuse_public_key=double.config.public_key,
                langfuse_secret_key=double.config.secret_key,
                openai_base_url=llm.base_url,
            ).write(tmp_dir / "app.env")
            run_suite(env_file, args.runs)


def run_suite(env_file: Path, runs: int) -> None:
    from tests.standin.harness import run_smoke  # noqa: PLC0415

    for run in range(1, runs + 1):
        started = time.perf_counter()
        result = run_smoke(env_file=env_file, options=("--durations=5",), timeout=600)
        wall = time.perf_counter() - started
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        summary = lines[-1] if lines else "(no output)"
        slowest = [line for line in lines if re.search(r"\d+\.\d+s (call|setup)", line)]
        print(f"run {run}: exit {result.returncode}, {wall:.1f} s wall: {summary}")
        for line in slowest:
            print(f"    {line}")
        if result.returncode != 0:
            print(result.stdout[-3000:])


if __name__ == "__main__":
    main()
