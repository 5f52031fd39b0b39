"""Tokens per second one served model sustains under load: the figure a hardware-derived price
needs (vllm_models[].price.tokens_per_second; README, "Cost per trace").

Short and bounded, run on purpose against the deployed model, never part of a deploy:
`--requests` chat completions (default 32), `--concurrency` at a time (default 8), each at most
`--max-tokens` generated tokens (default 128), and the whole run stops after `--max-seconds`
(default 120; requests still running then are not counted).

    python benchmarks/throughput.py --env-file inventories/<env>/credentials/app.env \
        [--model NAME] [--hourly-cost 2.50] [--utilisation 0.5]

Measures prompt and generated tokens (from each answer's `usage`) over the wall time of the
run. tokens_per_second = (prompt + generated tokens) / wall seconds: a price from the hardware
spreads the hour over every token the model processes, so run it with prompts and answer
lengths like your applications'. With `--hourly-cost` it prints the price per 1M tokens that
figure gives (the role's own formula, plugins/filter/model_prices.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
PROMPT = (
    "Explain in a short paragraph why observability matters for applications built on large "
    "language models, with one concrete example."
)


def _prices_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "model_prices", REPO_ROOT / "plugins" / "filter" / "model_prices.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def read_env_file(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )


def one_request(
    http: httpx.Client, url: str, model: str, max_tokens: int, deadline: float
) -> dict[str, int]:
    timeout = max(1.0, deadline - time.monotonic())
    answer = http.post(
        url,
        json={
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens,
            "temperature": 0.7,
        },
        timeout=timeout,
    )
    answer.raise_for_status()
    usage = answer.json()["usage"]
    return {"prompt": int(usage["prompt_tokens"]), "completion": int(usage["completion_tokens"])}


def run(args: argparse.Namespace) -> dict[str, Any]:
    values = read_env_file(Path(args.env_file)) if args.env_file else {}
    base_url = (args.base_url or values.get("OPENAI_BASE_URL", "")).rstrip("/")
    api_key = args.api_key or values.get("OPENAI_API_KEY", "")
    model = args.model or values.get("GLASSBOX_MODEL", "")
    if not (base_url and model):
        sys.exit("give --env-file (the app .env) or --base-url, --api-key and --model")
    url = f"{base_url}/chat/completions"
    started = time.monotonic()
    deadline = started + args.max_seconds
    done: list[dict[str, int]] = []
    failed: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with (
        httpx.Client(headers=headers) as http,
        ThreadPoolExecutor(max_workers=args.concurrency) as pool,
    ):
        pending: set[Future[dict[str, int]]] = set()
        submitted = 0
        while (submitted < args.requests or pending) and time.monotonic() < deadline:
            while submitted < args.requests and len(pending) < args.concurrency:
                pending.add(pool.submit(one_request, http, url, model, args.max_tokens, deadline))
                submitted += 1
            finished, pending = wait(
                pending, timeout=max(0.1, deadline - time.monotonic()), return_when=FIRST_COMPLETED
            )
            for future in finished:
                try:
                    done.append(future.result())
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    failed.append(str(exc)[:200])
        wall = time.monotonic() - started
        for future in pending:
            future.cancel()
    prompt = sum(d["prompt"] for d in done)
    completion = sum(d["completion"] for d in done)
    result: dict[str, Any] = {
        "model": model,
        "requests_done": len(done),
        "requests_failed": len(failed),
        "concurrency": args.concurrency,
        "wall_s": round(wall, 2),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_tokens_per_second": round(prompt / wall, 2) if wall else 0,
        "generated_tokens_per_second": round(completion / wall, 2) if wall else 0,
        "tokens_per_second": round((prompt + completion) / wall, 2) if wall else 0,
        "first_failure": failed[0] if failed else "",
    }
    if args.hourly_cost is not None and result["tokens_per_second"] > 0:
        price = {
            "hourly_cost": args.hourly_cost,
            "tokens_per_second": result["tokens_per_second"],
            "utilisation": args.utilisation,
        }
        problems = _prices_module().price_problems([{"price": price}])
        if problems:
            sys.exit(" ".join(problems))
        result["price_per_million"] = _prices_module().per_million(price)
        result["price"] = price
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--env-file", help="the app .env (OPENAI_BASE_URL, OPENAI_API_KEY, GLASSBOX_MODEL)"
    )
    parser.add_argument("--base-url", help="vLLM base URL, e.g. http://gpu1:8000/v1")
    parser.add_argument("--api-key", help="vLLM API key")
    parser.add_argument("--model", help="served model name (default: GLASSBOX_MODEL)")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--hourly-cost", type=float, help="what the host or GPUs cost per hour")
    parser.add_argument("--utilisation", type=float, default=1.0, help="busy share of paid hours")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.max_tokens < 1 or args.max_seconds <= 0:
        parser.error("--requests, --concurrency, --max-tokens and --max-seconds must be positive")
    result = run(args)
    print(json.dumps(result, indent=2))
    if result["requests_done"]:
        print("\nvllm_models entry (hourly_cost: what the host or its GPUs cost you per hour):")
        print("  price:")
        print(f"    hourly_cost: {args.hourly_cost if args.hourly_cost is not None else '<yours>'}")
        print(f"    tokens_per_second: {result['tokens_per_second']}")
        print(f"    utilisation: {args.utilisation}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["requests_done"] and not result["requests_failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
