"""One traced completion, as an application makes it (`python -m tests.realstack.traced_call F`).

An `@observe` span around a `langfuse.openai` call of the served model, flushed; prints JSON
{trace_id, prompt_tokens, completion_tokens} (the usage the LLM returned). A child process, so
the Langfuse SDK's client and exporter never live in the pytest process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(env_file: str) -> int:
    values = dict(
        line.split("=", 1)
        for line in Path(env_file).read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    )
    for key in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_BASE_URL"):
        os.environ[key] = values[key]
    from langfuse import get_client, observe  # noqa: PLC0415 - after the environment is set
    from langfuse.openai import OpenAI  # noqa: PLC0415

    llm = OpenAI(
        base_url=values["OPENAI_BASE_URL"],
        api_key=values["OPENAI_API_KEY"],
        max_retries=0,
        timeout=120.0,
    )

    @observe(name="glassbox-cost-check")
    def ask() -> tuple[str, object]:
        answer = llm.chat.completions.create(
            model=values["GLASSBOX_MODEL"],
            messages=[{"role": "user", "content": "Name one colour."}],
            max_tokens=12,
            temperature=0,
        )
        return get_client().get_current_trace_id(), answer.usage

    trace_id, usage = ask()
    get_client().shutdown()
    print(
        json.dumps(
            {
                "trace_id": trace_id,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
