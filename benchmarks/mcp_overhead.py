"""Per-call cost of one `search` four ways, side by side in one run, on one index:
in-process `Retriever.search`, `POST /v1/search`, MCP `search` over streamable HTTP
(`/mcp` in the same service) and MCP `search` over stdio (`thinkrag mcp` child process).

The index is the contract corpus built by the real job with the test-only hash embedder,
searched in bm25 mode (the embedder is not what is measured). Calls are interleaved in
rounds so machine load hits every path alike. Prints a markdown table.

    python benchmarks/mcp_overhead.py [--calls 200]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

QUERIES = ["Jevons paradox coal", "efficiency demand", "passage index", "expert model token"]


def build_index(root: Path) -> Path:
    from retrieval.indexing.job import index_documents
    from retrieval.indexing.job_types import IndexConfig
    from testing.contract import contract_documents
    from testing.embedder import HashEmbedder

    index = root / "index"
    index_documents(contract_documents(), index, IndexConfig(), embedder=HashEmbedder())
    return index


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(index: Path, root: Path) -> tuple[str, Callable[[], None]]:
    import uvicorn

    from serving.http.app import create_app
    from serving.settings import load_settings

    port = free_port()
    settings = load_settings(
        index_dir=index,
        retriever_mode="bm25",
        db_path=root / "service.db",
        port=port,
        requests_per_minute=1_000_000,  # /mcp shares the service's rate limit
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


async def timed(call: Callable[[str], Awaitable[object]], query: str) -> float:
    started = time.perf_counter()
    await call(query)
    return (time.perf_counter() - started) * 1000


async def run(calls: int) -> None:
    from retrieval.search.retriever import load_retriever

    root = Path(tempfile.mkdtemp(prefix="mcp-bench-"))
    index = build_index(root)
    retriever = load_retriever(index, mode="bm25")
    url, stop = start_service(index, root)
    stdio = StdioServerParameters(
        command=sys.executable,
        args=["-c", "from serving.cli import main; main()", "mcp", "--index", str(index)],
        env={"THINKRAG_RETRIEVER_MODE": "bm25"},
        cwd=str(root),
    )
    try:
        async with (
            httpx.AsyncClient(base_url=url) as rest,
            httpx2.AsyncClient() as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (hr, hw),
            ClientSession(hr, hw) as over_http,
            stdio_client(stdio) as (sr, sw),
            ClientSession(sr, sw) as over_stdio,
        ):
            await over_http.initialize()
            await over_stdio.initialize()

            async def in_process(q: str) -> object:
                return await asyncio.to_thread(retriever.search, q, 5)

            async def v1_search(q: str) -> object:
                r = await rest.post("/v1/search", json={"query": q, "k": 5})
                r.raise_for_status()
                return r.json()

            async def mcp_http(q: str) -> object:
                return await over_http.call_tool("search", {"query": q, "k": 5})

            async def mcp_stdio(q: str) -> object:
                return await over_stdio.call_tool("search", {"query": q, "k": 5})

            paths = {
                "in-process Retriever.search (to_thread)": in_process,
                "POST /v1/search": v1_search,
                "MCP search, streamable HTTP /mcp": mcp_http,
                "MCP search, stdio (thinkrag mcp)": mcp_stdio,
            }
            samples: dict[str, list[float]] = {name: [] for name in paths}
            for fn in paths.values():  # warm-up
                for q in QUERIES:
                    await fn(q)
            for i in range(calls):
                q = QUERIES[i % len(QUERIES)]
                for name, fn in paths.items():
                    samples[name].append(await timed(fn, q))
    finally:
        stop()
    base = statistics.median(samples["in-process Retriever.search (to_thread)"])
    print(f"| path ({calls} calls each, interleaved) | p50 ms | p90 ms | p50 over in-process |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        values.sort()
        p50 = statistics.median(values)
        p90 = values[int(len(values) * 0.9)]
        print(f"| {name} | {p50:.2f} | {p90:.2f} | +{p50 - base:.2f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    asyncio.run(run(parser.parse_args().calls))


if __name__ == "__main__":
    main()
