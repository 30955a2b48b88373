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
import contextlib
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from retrieval.search.memory import InMemoryRetriever
from retrieval.types import Passage
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest

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


Result = tuple[float, float, int, str]  # first event s, done s, events, last event type


async def one_run(client: httpx.AsyncClient, url: str) -> Result:
    t0 = time.perf_counter()
    run = (await client.post(url + "/v1/runs", json={"question": "capital of Freedonia?"})).json()
    first = None
    seqs: list[int] = []
    last = ""
    async with client.stream("GET", f"{url}/v1/runs/{run['run_id']}/events") as response:
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                first = first or time.perf_counter() - t0
                seqs.append(int(line[4:]))
            elif line.startswith("event: end"):
                break
            elif line.startswith("event: "):
                last = line[7:]
            elif line.startswith("data: ") and last == "error":
                last = "error:" + json.loads(line[6:])["kind"]
    if seqs != list(range(1, len(seqs) + 1)):
        raise SystemExit(f"run {run['run_id']}: lost or duplicated events: {seqs}")
    return first or 0.0, time.perf_counter() - t0, len(seqs), last


def summarize(results: list[Result], wall: float) -> dict[str, float]:
    firsts, totals, counts, lasts = zip(*results, strict=True)
    failures = Counter(x for x in lasts if x != "run_finished")
    if failures:
        print(f"  ({len(results)} runs) not finished: {dict(failures)}", file=sys.stderr)
    return {
        "ttfe_p50": pct(list(firsts), 0.5), "ttfe_p99": pct(list(firsts), 0.99),
        "done_p50": pct(list(totals), 0.5), "done_p99": pct(list(totals), 0.99),
        "events_s": sum(counts) / wall, "wall": wall, "failed": sum(failures.values()),
    }  # fmt: skip


async def hold(url: str, n: int) -> dict[str, float]:
    # No keep-alive: reusing a connection the server is just closing as idle is a client
    # race (uvicorn closes idle ones after 5 s) that would show up as a spurious error.
    limits = httpx.Limits(max_connections=2 * n + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_run(client, url) for _ in range(n)))
        wall = time.perf_counter() - t0
    return summarize(list(results), wall)


async def in_process(base_url: str, corpus: list[Passage], n: int) -> dict[str, float]:
    """Baseline: the same runs driven straight through `ResearchAgent` (no HTTP, no store)."""
    from agent.config import AgentConfig
    from agent.llm.client import OpenAIClient
    from agent.runner import ResearchAgent

    agent = ResearchAgent(
        OpenAIClient(base_url, "scripted"), InMemoryRetriever(corpus), AgentConfig(top_k=2)
    )

    async def one(i: int) -> Result:
        t0 = time.perf_counter()
        first, count, last = 0.0, 0, ""
        async for ev in agent.run("capital of Freedonia?", thread_id=f"t{n}-{i}", run_id=f"r{i}"):
            first = first or time.perf_counter() - t0
            count += 1
            last = ev.type if ev.type != "error" else f"error:{getattr(ev, 'kind', '')}"
        return first, time.perf_counter() - t0, count, last

    try:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    finally:
        await agent.aclose()
    return summarize(list(results), wall)


async def search_latency(
    url: str, retriever: InMemoryRetriever, queries: list[str]
) -> tuple[float, float]:
    """Median latency over HTTP and in-process, interleaved so both see the same load."""
    remote, local = [], []
    async with httpx.AsyncClient(timeout=30) as client:
        for q in queries:
            t0 = time.perf_counter()
            r = await client.post(url + "/v1/search", json={"query": q, "k": 5})
            r.raise_for_status()
            remote.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            retriever.search(q, 5)
            local.append(time.perf_counter() - t0)
    return statistics.median(remote), statistics.median(local)


def serve_model(latency: float) -> None:
    """Child-process mode: run the scripted model server and print its URL."""
    with ScriptedModelServer(turn, latency=latency, chunk_chars=16) as model:
        print(model.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin


def start_model(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-model", "--latency", str(latency)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="50,200", help="concurrency levels, comma-separated")
    parser.add_argument("--latency", type=float, default=0.01, help="seconds per model chunk")
    parser.add_argument("--serve-model", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_model:
        serve_model(args.latency)
        return
    levels = [int(x) for x in args.runs.split(",")]
    corpus = passages()
    model_proc, model_url = start_model(args.latency)
    with contextlib.ExitStack() as stack:
        tmpdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with (tmpdir / "p.jsonl").open("w") as fh:
            for p in corpus:
                fh.write(json.dumps(dataclasses.asdict(p)) + "\n")
        top = max(levels)
        config = {
            "memory_passages": str(tmpdir / "p.jsonl"), "model_url": model_url,
            "model_name": "scripted", "db_path": str(tmpdir / "s.db"), "top_k": 2,
            "max_active_runs": top, "max_queued_runs": top, "max_runs_per_key": top,
            "max_active_runs_per_key": top,  # one client: let it use every slot
            "requests_per_minute": 1_000_000,
        }  # fmt: skip
        (tmpdir / "c.toml").write_text(
            "\n".join(f"{k} = {json.dumps(v)}" for k, v in config.items())
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = stack.enter_context(open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--config", str(tmpdir / "c.toml"),
             "--port", str(port)],
            cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=log,
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
                base = asyncio.run(in_process(model_url, corpus, n))
                cpu0 = sum(server.cpu_times()[:2])
                stats = asyncio.run(hold(url, n))
                cpu = sum(server.cpu_times()[:2]) - cpu0
                rss = server.memory_info().rss / 2**20
                rows.append((n, base, stats, rss, cpu))
            queries = [f"capital of region {i}" for i in range(200)]
            remote, local = asyncio.run(search_latency(url, InMemoryRetriever(corpus), queries))
        finally:
            proc.terminate()
            proc.wait(10)
            if model_proc.stdin is not None:
                model_proc.stdin.close()
            model_proc.wait(10)
    report(args.latency, idle_rss, rows, remote, local, len(corpus))


def report(
    latency: float,
    idle_rss: float,
    rows: list[tuple[int, dict[str, float], dict[str, float], float, float]],
    remote: float,
    local: float,
    corpus_size: int,
) -> None:
    print(f"Scripted model: {latency * 1000:.0f} ms per 16-char chunk, 2 model calls per run; ")
    print(f"server idle RSS {idle_rss:.0f} MiB. Every run's events checked: none lost or repeated.")
    print()
    print("| runs | path | failed | first event p50 / p99 (s) | done p50 / p99 (s) | events/s "
          "| server RSS MiB | server CPU s | done p50 ratio |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n, base, svc, rss, cpu in rows:
        for name, s, extra in (
            ("in-process agent", base, "| - | - | 1.0x |"),
            (
                "HTTP service",
                svc,
                f"| {rss:.0f} | {cpu:.1f} | {svc['done_p50'] / base['done_p50']:.2f}x |",
            ),
        ):
            print(
                f"| {n} | {name} | {s['failed']:.0f} | {s['ttfe_p50']:.3f} / {s['ttfe_p99']:.3f} "
                f"| {s['done_p50']:.2f} / {s['done_p99']:.2f} | {s['events_s']:.0f} {extra}"
            )
    print()
    print("| search path | p50 latency (ms) | ratio |")
    print("|---|---:|---:|")
    label = f"in-process `InMemoryRetriever.search` ({corpus_size} passages)"
    print(f"| {label} | {local * 1000:.2f} | 1.0x |")
    print(f"| `POST /v1/search` over loopback HTTP | {remote * 1000:.2f} | {remote / local:.2f}x |")


if __name__ == "__main__":
    main()
