"""Tracing overhead on the request path: untraced vs traced (Langfuse up) vs traced (Langfuse down).

The same chat completion goes to the same real local LLM server (xllamacpp + SmolLM2 from the
stand-in stack, called directly, without the test-only model gate). Each mode runs in its own
worker process, because importing `langfuse.openai` patches the OpenAI SDK process-wide; the
parent interleaves the requests (round-robin, rotating which mode goes first) so load drift hits
every mode alike. "Langfuse down" points the SDK at a closed loopback port: the application must
keep working, with zero failed completions.

    python benchmarks/tracing_overhead.py [--requests 30] [--max-tokens 16] [--json out.json]
        [--env-file PATH]

`--env-file`: "Langfuse up" is the running stack of that app env file (e.g. the real Langfuse of
`make realstack`) and the completions go to its LLM; the generations that landed are counted
through the Langfuse API afterwards. Without it, the Langfuse contract double and a fresh LLM.

Figures, not assertions: the targets (traced p50 within 5 % of untraced with Langfuse up, 10 %
with it down) are reported as met or not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
MODES = ("untraced", "traced, Langfuse up", "traced, Langfuse down")
TARGETS = {"traced, Langfuse up": 1.05, "traced, Langfuse down": 1.10}
PROMPT = "Give one short tip for writing reliable software."


# ---- worker side ---------------------------------------------------------------------------------
def worker(mode: str) -> None:
    """Answer one completion per `go` line on stdin with a JSON result line on stdout."""
    base_url, api_key = os.environ["BENCH_OPENAI_BASE_URL"], os.environ["BENCH_OPENAI_API_KEY"]
    model, max_tokens = os.environ["BENCH_MODEL"], int(os.environ["BENCH_MAX_TOKENS"])
    langfuse = None
    if mode == "untraced":
        import openai  # noqa: PLC0415 - per-mode imports are the point of the worker split

        client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)

        def call() -> None:
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": PROMPT}],
                temperature=0,
                max_tokens=max_tokens,
            )
    else:
        from langfuse import Langfuse, observe  # noqa: PLC0415
        from langfuse.openai import OpenAI  # noqa: PLC0415

        langfuse = Langfuse()  # LANGFUSE_* from the environment the parent set
        client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0)

        @observe(name="bench-pipeline")
        def call() -> None:
            client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": PROMPT}],
                temperature=0,
                max_tokens=max_tokens,
            )

    for line in sys.stdin:
        if line.strip() != "go":
            break
        started = time.perf_counter()
        error = None
        try:
            call()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(json.dumps({"ms": elapsed_ms, "error": error}), flush=True)
    flush_s = 0.0
    if langfuse is not None:
        started = time.perf_counter()
        langfuse.shutdown()
        flush_s = time.perf_counter() - started
    print(json.dumps({"shutdown_s": flush_s}), flush=True)


# ---- parent side ---------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class Worker:
    def __init__(self, mode: str, env: dict[str, str], log_path: Path) -> None:
        self.mode = mode
        self.log_path = log_path
        with log_path.open("wb") as log:  # the SDK's export warnings, kept out of the table
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", mode],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                text=True,
            )
        self.samples: list[float] = []
        self.errors: list[str] = []
        self.shutdown_s = 0.0
        self.log_lines = 0

    def request(self, record: bool) -> None:
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write("go\n")
        stdin.flush()
        result = json.loads(stdout.readline())
        if record:
            self.samples.append(result["ms"])
            if result["error"]:
                self.errors.append(result["error"])

    def finish(self) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.shutdown_s = json.loads(self.proc.stdout.readline())["shutdown_s"]
        self.proc.wait(timeout=120)
        self.log_lines = len(self.log_path.read_text(errors="replace").splitlines())


def measure(
    args: argparse.Namespace, tmp: Path, base_env: dict[str, str], bases: dict[str, str]
) -> tuple[dict[str, Worker], float]:
    """Warm up, then run the interleaved rounds; return the finished workers and the wall time."""
    workers = {
        m: Worker(m, {**base_env, "LANGFUSE_BASE_URL": bases[m]}, tmp / f"{i}.log")
        for i, m in enumerate(MODES)
    }
    for _ in range(args.warmup):
        for w in workers.values():
            w.request(record=False)
    started = time.perf_counter()
    for i in range(args.requests):
        order = MODES[i % 3 :] + MODES[: i % 3]
        for mode in order:
            workers[mode].request(record=True)
    wall_s = time.perf_counter() - started
    for w in workers.values():
        w.finish()
    return workers, wall_s


def run_against(args: argparse.Namespace) -> tuple[dict[str, Worker], float, int]:
    """Against the stack of an app env file: its LLM, its Langfuse (the real one)."""
    from datetime import UTC, datetime  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    sys.path.insert(0, str(REPO_ROOT / "smoke"))
    import glassbox_smoke as gs  # noqa: PLC0415

    from tests.standin.llm_server import free_port  # noqa: PLC0415

    settings = gs.load_settings({"GLASSBOX_ENV_FILE": str(args.env_file)})
    since = datetime.now(tz=UTC).isoformat()
    with tempfile.TemporaryDirectory() as tmp:
        base_env = {
            **os.environ,
            "BENCH_OPENAI_BASE_URL": settings.openai_base_url,
            "BENCH_OPENAI_API_KEY": settings.openai_api_key,
            "BENCH_MODEL": settings.model,
            "BENCH_MAX_TOKENS": str(args.max_tokens),
            "LANGFUSE_PUBLIC_KEY": settings.langfuse_public_key,
            "LANGFUSE_SECRET_KEY": settings.langfuse_secret_key,
        }
        bases = {
            "untraced": settings.langfuse_base_url,
            "traced, Langfuse up": settings.langfuse_base_url,
            "traced, Langfuse down": f"http://127.0.0.1:{free_port()}",
        }
        workers, wall_s = measure(args, Path(tmp), base_env, bases)
    expected = args.requests + args.warmup
    landed, deadline = 0, time.monotonic() + 120
    while landed < expected and time.monotonic() < deadline:
        response = httpx.get(
            f"{settings.langfuse_base_url}/api/public/v2/observations",
            params={"type": "GENERATION", "fromStartTime": since, "limit": 1000},
            auth=(settings.langfuse_public_key, settings.langfuse_secret_key),
            timeout=60,
        )
        landed = len(response.json()["data"]) if response.status_code == 200 else 0
        time.sleep(1)
    return workers, wall_s, landed


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.standin.harness import LLM_API_KEY, SERVED_MODEL  # noqa: PLC0415
    from tests.standin.langfuse_double import LangfuseDouble  # noqa: PLC0415
    from tests.standin.llm_server import LLMServerProcess, free_port  # noqa: PLC0415

    if args.env_file:
        workers, wall_s, landed = run_against(args)
        return summarise(args, workers, wall_s, landed, f"Langfuse at {args.env_file}")

    with tempfile.TemporaryDirectory() as tmp, LangfuseDouble() as double:
        llm = LLMServerProcess(
            api_key=LLM_API_KEY,
            alias=SERVED_MODEL,
            log_path=Path(tmp) / "llm.log",
            parallel=1,
        ).start()
        try:
            base_env = {
                **os.environ,
                "BENCH_OPENAI_BASE_URL": llm.upstream_base_url,
                "BENCH_OPENAI_API_KEY": LLM_API_KEY,
                "BENCH_MODEL": SERVED_MODEL,
                "BENCH_MAX_TOKENS": str(args.max_tokens),
                "LANGFUSE_PUBLIC_KEY": double.config.public_key,
                "LANGFUSE_SECRET_KEY": double.config.secret_key,
            }
            bases = {
                "untraced": double.base_url,
                "traced, Langfuse up": double.base_url,
                "traced, Langfuse down": f"http://127.0.0.1:{free_port()}",
            }
            workers, wall_s = measure(args, Path(tmp), base_env, bases)
            generations = [o for o in double.observations() if o["type"] == "GENERATION"]
        finally:
            llm.stop()
    return summarise(args, workers, wall_s, len(generations), "the Langfuse double")


def summarise(
    args: argparse.Namespace, workers: dict[str, Worker], wall_s: float, landed: int, where: str
) -> dict[str, Any]:
    log_lines = {m: w.log_lines for m, w in workers.items()}
    base_p50 = percentile(workers["untraced"].samples, 50)
    results: dict[str, Any] = {
        "requests_per_mode": args.requests,
        "max_tokens": args.max_tokens,
        "wall_s": wall_s,
        "langfuse": where,
        "generations_landed_with_langfuse_up": landed,
        "modes": {},
    }
    baseline = workers["untraced"].samples
    for mode, w in workers.items():
        p50 = percentile(w.samples, 50)
        # Same round, same load: the per-round difference cancels most of the machine's noise.
        paired = [t - u for t, u in zip(w.samples, baseline, strict=True)]
        results["modes"][mode] = {
            "p50_ms": p50,
            "p95_ms": percentile(w.samples, 95),
            "mean_ms": statistics.fmean(w.samples),
            "p50_ratio": p50 / base_p50,
            "paired_median_delta_ms": statistics.median(paired),
            "sdk_log_lines": log_lines[mode],
            "failed": len(w.errors),
            "first_error": w.errors[0] if w.errors else None,
            "shutdown_s": w.shutdown_s,
            "target_ratio": TARGETS.get(mode),
            "target_met": (p50 / base_p50) <= TARGETS[mode] if mode in TARGETS else None,
        }
    return results


def print_table(results: dict[str, Any]) -> None:
    print(
        f"\n{results['requests_per_mode']} completions per mode, max_tokens "
        f"{results['max_tokens']}, interleaved; wall {results['wall_s']:.1f} s"
    )
    header = (
        f"{'mode':<24}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'p50 ratio':>11}"
        f"{'paired d ms':>13}{'failed':>8}{'target':>8}{'met':>6}{'flush s':>9}"
    )
    print(header)
    print("-" * len(header))
    for mode, row in results["modes"].items():
        target = f"{row['target_ratio']:.2f}" if row["target_ratio"] else "-"
        met = {True: "yes", False: "NO", None: "-"}[row["target_met"]]
        print(
            f"{mode:<24}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['mean_ms']:>9.1f}"
            f"{row['p50_ratio']:>11.3f}{row['paired_median_delta_ms']:>13.1f}"
            f"{row['failed']:>8}{target:>8}{met:>6}"
            f"{row['shutdown_s']:>9.2f}"
        )
    print(
        f"generations readable in {results['langfuse']} (mode 'up'): "
        f"{results['generations_landed_with_langfuse_up']} (warm-up included)"
    )
    print(
        "paired d ms: median over rounds of (this mode - untraced) in the same round; "
        "flush s: Langfuse shutdown() at exit"
    )
    for mode, row in results["modes"].items():
        if row["sdk_log_lines"]:
            print(f"{mode}: the SDK logged {row['sdk_log_lines']} warning/error lines")
        if row["first_error"]:
            print(f"first error in {mode}: {row['first_error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30, help="completions per mode")
    parser.add_argument("--warmup", type=int, default=3, help="unrecorded completions per mode")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--env-file", type=Path, help="app env file of a running stack")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    results = run(args)
    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
