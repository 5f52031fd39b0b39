"""Trace visibility lag against a running stack: send -> readable through the Langfuse API.

A burst of traced completions (an `@observe` span with a langfuse.openai generation inside, as the
smoke suite sends them) on a small thread pool, then `flush()`; each trace is polled on
GET /api/public/v2/observations every 0.1 s until its span AND generation are readable.
Lag = readable time - the moment its pipeline call returned (this includes waiting for the rest
of the burst, since spans are exported at `flush()`), and also readable time - the end of
`flush()` (the server's own part). Prints p50/p95 of both over the burst.

    python benchmarks/visibility_lag.py --env-file PATH [--burst 20] [--workers 4]

PATH is the app env file of a running stack (`make realstack` prints it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT / "smoke"))
    import glassbox_smoke as gs  # noqa: PLC0415

    settings = gs.load_settings({"GLASSBOX_ENV_FILE": str(args.env_file)})
    os.environ["LANGFUSE_PUBLIC_KEY"] = settings.langfuse_public_key
    os.environ["LANGFUSE_SECRET_KEY"] = settings.langfuse_secret_key
    os.environ["LANGFUSE_BASE_URL"] = settings.langfuse_base_url
    from langfuse import Langfuse, observe  # noqa: PLC0415
    from langfuse.openai import OpenAI  # noqa: PLC0415

    langfuse = Langfuse()
    llm = OpenAI(base_url=settings.openai_base_url, api_key=settings.openai_api_key)

    @observe(name="bench-visibility")
    def pipeline(index: int) -> tuple[str, str, float]:
        trace_id = langfuse.get_current_trace_id() or ""
        span_id = langfuse.get_current_observation_id() or ""
        llm.chat.completions.create(
            model=settings.model,
            messages=[{"role": "user", "content": f"Count from {index} to {index + 3}."}],
            temperature=0,
            max_tokens=8,
        )
        return trace_id, span_id, time.monotonic()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        sent = list(pool.map(pipeline, range(args.burst)))
    flush_started = time.monotonic()
    langfuse.flush()
    flush_s = time.monotonic() - flush_started
    client = httpx.Client(
        base_url=settings.langfuse_base_url,
        auth=(settings.langfuse_public_key, settings.langfuse_secret_key),
        timeout=30,
    )
    pending = {trace: (span, at) for trace, span, at in sent}
    lags: dict[str, float] = {}
    after_flush: dict[str, float] = {}
    flushed_at = time.monotonic()
    deadline = time.monotonic() + args.deadline
    while pending and time.monotonic() < deadline:
        for trace, (span, at) in list(pending.items()):
            response = client.get(
                "/api/public/v2/observations", params={"traceId": trace, "limit": 100}
            )
            data = response.json().get("data", []) if response.status_code == 200 else []
            if any(o["id"] == span for o in data) and gs.by_type(data, "GENERATION"):
                lags[trace] = time.monotonic() - at
                after_flush[trace] = time.monotonic() - flushed_at
                del pending[trace]
        time.sleep(0.1)
    langfuse.shutdown()
    values = list(lags.values())
    print(
        f"burst of {args.burst} on {args.workers} threads in {flush_started - started:.1f} s, "
        f"flush {flush_s:.2f} s; readable {len(values)}/{args.burst}"
    )
    if values:
        print(
            f"send -> readable lag: p50 {percentile(values, 50):.2f} s, "
            f"p95 {percentile(values, 95):.2f} s, max {max(values):.2f} s"
        )
        server = list(after_flush.values())
        print(
            f"flush() end -> readable: p50 {percentile(server, 50):.2f} s, "
            f"p95 {percentile(server, 95):.2f} s"
        )
    if pending:
        print(f"NOT readable within {args.deadline:g} s: {len(pending)} traces")


if __name__ == "__main__":
    main()
