"""Benchmark the research service against a scripted model with fixed latency.

Held concurrent runs (time to first event, time to completion, events/s, server RSS)
and `/v1/search` latency against calling the same retriever in-process. Every run's
event numbers are checked for gaps and repeats: a lost or duplicated event fails the
benchmark rather than counting as a figure.

    python benchmarks/service.py [--runs 50,200] [--latency 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from agent.llm.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
from retrieval.memory import InMemoryRetriever
from retrieval.types import Passage

REPO = Path(__file__).resolve().parents[1]


def turn(req: ScriptRequest) -> ScriptedTurn:
    if any(m.get("role") == "tool" for m in req.body.get("messages", [])):
        return ScriptedTurn(reasoning="The passage names it.", content="It is Sylvania City [1].")
    return ScriptedTurn(
        reasoning="Let me search for it.",
        tool_calls=(("search", json.dumps({"query": "capital of Freedonia"})),),
    )


def passages(n: int = 2000) -> list[Passage]:
    out = []
    for i in range(n):
        text = f"Document {i} says the capital of region {i} is city {i * 7 % 101}. " * 3
        out.append(Passage(i + 1, f"d{i}", 0, f"Region {i}", text, f"r{i}.md", 0, len(text)))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def one_run(client: httpx.AsyncClient, url: str) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    run = (await client.post(url + "/v1/runs", json={"question": "capital of Freedonia?"})).json()
    first = None
    seqs: list[int] = []
    async with client.stream("GET", f"{url}/v1/runs/{run['run_id']}/events") as response:
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                first = first or time.perf_counter() - t0
                seqs.append(int(line[4:]))
            elif line.startswith("event: end"):
                break
    if seqs != list(range(1, len(seqs) + 1)):
        raise SystemExit(f"run {run['run_id']}: lost or duplicated events: {seqs}")
    return first or 0.0, time.perf_counter() - t0, len(seqs)


async def hold(url: str, n: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_run(client, url) for _ in range(n)))
        wall = time.perf_counter() - t0
    firsts, totals, counts = zip(*results, strict=True)
    return {
        "ttfe_p50": pct(list(firsts), 0.5), "ttfe_p99": pct(list(firsts), 0.99),
        "done_p50": pct(list(totals), 0.5), "done_p99": pct(list(totals), 0.99),
        "events_s": sum(counts) / wall, "wall": wall,
    }  # fmt: skip


async def search_latency(url: str, queries: list[str]) -> float:
    async with httpx.AsyncClient(timeout=30) as client:
        times = []
        for q in queries:
            t0 = time.perf_counter()
            r = await client.post(url + "/v1/search", json={"query": q, "k": 5})
            r.raise_for_status()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="50,200", help="concurrency levels, comma-separated")
    parser.add_argument("--latency", type=float, default=0.01, help="seconds per model chunk")
    args = parser.parse_args()
    levels = [int(x) for x in args.runs.split(",")]
    corpus = passages()
    with (
        tempfile.TemporaryDirectory() as tmp,
        ScriptedModelServer(turn, latency=args.latency, chunk_chars=16) as model,
    ):
        tmpdir = Path(tmp)
        with (tmpdir / "p.jsonl").open("w") as fh:
            for p in corpus:
                fh.write(json.dumps(dataclasses.asdict(p)) + "\n")
        top = max(levels)
        config = {
            "memory_passages": str(tmpdir / "p.jsonl"), "model_url": model.base_url,
            "model_name": "scripted", "db_path": str(tmpdir / "s.db"), "top_k": 2,
            "max_active_runs": top, "max_queued_runs": top, "max_runs_per_key": top,
            "requests_per_minute": 1_000_000,
        }  # fmt: skip
        (tmpdir / "c.toml").write_text(
            "\n".join(f"{k} = {json.dumps(v)}" for k, v in config.items())
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--config", str(tmpdir / "c.toml"), "--port", str(port)],
            cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            server = psutil.Process(proc.pid)
            rows = []
            idle_rss = server.memory_info().rss / 2**20
            for n in levels:
                stats = asyncio.run(hold(url, n))
                rss = server.memory_info().rss / 2**20
                rows.append((n, stats, rss))
            queries = [f"capital of region {i}" for i in range(200)]
            remote = asyncio.run(search_latency(url, queries))
            retriever = InMemoryRetriever(corpus)
            local = []
            for q in queries:
                t0 = time.perf_counter()
                retriever.search(q, 5)
                local.append(time.perf_counter() - t0)
            local_p50 = statistics.median(local)
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"Scripted model: {args.latency * 1000:.0f} ms per 16-char chunk; 2 model calls per run;")
    print(f"server idle RSS {idle_rss:.0f} MiB. Zero lost or duplicated events in every run.\n")
    print(
        "| concurrent runs | first event p50 / p99 (s) | completion p50 / p99 (s) | events/s | server RSS (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for n, s, rss in rows:
        print(f"| {n} | {s['ttfe_p50']:.3f} / {s['ttfe_p99']:.3f} | {s['done_p50']:.2f} / "
              f"{s['done_p99']:.2f} | {s['events_s']:.0f} | {rss:.0f} |")  # fmt: skip
    print("\n| search path | p50 latency (ms) | ratio |")
    print("|---|---:|---:|")
    print(
        f"| in-process `InMemoryRetriever.search` ({len(corpus)} passages) | {local_p50 * 1000:.2f} | 1.0x |"
    )
    print(
        f"| `POST /v1/search` over loopback HTTP | {remote * 1000:.2f} | {remote / local_p50:.1f}x |"
    )


if __name__ == "__main__":
    main()
