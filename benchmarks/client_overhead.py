"""Per-request overhead of OpenAIClient vs a bare httpx call to the same server.

The server is a ScriptedModelServer with zero latency in a child process (so its work does
not compete with the client for the GIL). Both sides parse the JSON they receive; the
baseline is the least a caller could do. Prints a markdown table with p50/p99 and ratios.

    python benchmarks/client_overhead.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from agent.llm.client import OpenAIClient
from agent.llm.types import ChatRequest, ChatResult, Message
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest

TURN = ScriptedTurn(reasoning="Let me think about this step by step. " * 5, content="Paris. " * 10)
BODY_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def _always(_: ScriptRequest) -> ScriptedTurn:
    return TURN


def _serve(queue: Any, stop: Any) -> None:
    server = ScriptedModelServer(_always, chunk_chars=8)
    queue.put(server.start())
    stop.wait()
    server.stop()


async def _bare_chat(http: httpx.AsyncClient, url: str) -> None:
    body = {"model": "scripted", "messages": BODY_MESSAGES, "max_tokens": 64, "stream": False}
    resp = await http.post(url, json=body)
    resp.raise_for_status()
    assert resp.json()["choices"][0]["message"]["content"]


async def _bare_stream(http: httpx.AsyncClient, url: str) -> None:
    body = {
        "model": "scripted",
        "messages": BODY_MESSAGES,
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.stream("POST", url, json=body) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                json.loads(line[6:])


async def _timed(fn: Callable[[], Awaitable[None]], n: int) -> list[float]:
    for _ in range(max(10, n // 10)):  # warm the pool and the code paths
        await fn()
    out: list[float] = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run(base_url: str, n: int) -> list[tuple[str, list[float], list[float]]]:
    url = f"{base_url}/chat/completions"
    request = ChatRequest(
        messages=[Message("user", "What is the capital of France?")], max_tokens=64
    )
    async with httpx.AsyncClient() as http, OpenAIClient(base_url, "scripted") as client:

        async def client_chat() -> None:
            assert (await client.chat(request)).content

        async def client_stream() -> None:
            async for item in client.stream_chat(request):
                if isinstance(item, ChatResult):
                    assert item.content

        rows = []
        for mode, bare, ours in (
            ("non-stream", lambda: _bare_chat(http, url), client_chat),
            ("stream", lambda: _bare_stream(http, url), client_stream),
        ):
            # Alternate halves so drift on a shared machine hits both sides alike.
            b1, o1 = await _timed(bare, n // 2), await _timed(ours, n // 2)
            o2, b2 = await _timed(ours, n // 2), await _timed(bare, n // 2)
            rows.append((mode, b1 + b2, o1 + o2))
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(queue, stop), daemon=True)
    proc.start()
    try:
        base_url = queue.get(timeout=30)
        rows = asyncio.run(_run(base_url, args.requests))
    finally:
        stop.set()
        proc.join(timeout=10)
    events = len(TURN.reasoning) // 8 + len(TURN.content) // 8 + 4
    print(f"Client overhead, {args.requests} requests per cell, ~{events} SSE events per stream\n")
    print(
        "| mode | bare httpx p50 ms | OpenAIClient p50 ms | ratio p50 | bare p99 ms "
        "| client p99 ms | ratio p99 | overhead p50 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode, bare, ours in rows:
        b50, o50, b99, o99 = _pct(bare, 0.5), _pct(ours, 0.5), _pct(bare, 0.99), _pct(ours, 0.99)
        print(
            f"| {mode} | {b50:.2f} | {o50:.2f} | {o50 / b50:.2f} | {b99:.2f} | {o99:.2f} "
            f"| {o99 / b99:.2f} | {statistics.median(ours) - statistics.median(bare):+.2f} |"
        )


if __name__ == "__main__":
    main()
