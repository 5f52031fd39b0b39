"""Wall time of the whole `pytest smoke` run against the stand-in stack.

Starts the real local LLM server and the Langfuse contract double (as `pytest tests` does), writes
an app env file, runs the suite in a child process `--runs` times and prints each wall time.

    python benchmarks/smoke_walltime.py [--runs 1] [--ingest-delay 0]
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
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from tests.standin.harness import LLM_API_KEY, SERVED_MODEL, AppEnv, run_smoke  # noqa: PLC0415
    from tests.standin.langfuse_double import DoubleConfig, LangfuseDouble  # noqa: PLC0415
    from tests.standin.llm_server import LLMServerProcess  # noqa: PLC0415

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
            for run in range(1, args.runs + 1):
                started = time.perf_counter()
                result = run_smoke(env_file=env_file, options=("--durations=5",), timeout=600)
                wall = time.perf_counter() - started
                lines = [line for line in result.stdout.splitlines() if line.strip()]
                summary = lines[-1] if lines else "(no output)"
                slowest = [line for line in lines if re.search(r"\d+\.\d+s (call|setup)", line)]
                print(f"run {run}: exit {result.returncode}, {wall:.1f} s wall: {summary}")
                for line in slowest:
                    print(f"    {line}")


if __name__ == "__main__":
    main()
