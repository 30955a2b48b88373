"""Orchestration overhead of the research graph, per step.

An instant scripted model (real HTTP, no generation time) and an in-memory retriever
make the model and the tools nearly free, so what remains is orchestration. Measured in
the same run, on the same trajectory (K searches, then an answer):

- bare loop: the same client, tools and retriever in a plain `while` loop (the floor);
- thinkrag: `ResearchAgent` (LangGraph graph, budgets, citations, events, SQLite
  checkpoint after every step);
- prebuilt: LangGraph's `create_react_agent` with langchain-openai's `ChatOpenAI`, a
  LangChain tool over the same retriever and the same SQLite checkpointer.

It also reports the memory an idle checkpointed thread costs (on disk, and in the
process after the runs finished).

    python benchmarks/orchestration.py [--runs 30] [--steps 4] [--threads 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from agent.config import AgentConfig
from agent.events import RunFinished, ToolResultEvent
from agent.llm.client import OpenAIClient
from agent.llm.types import ChatRequest, ChatResult, Message
from agent.runner import ResearchAgent
from agent.tools.base import ToolBox
from agent.tools.search import SearchTool
from retrieval.search.memory import InMemoryRetriever
from retrieval.types import Passage
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest

TOPICS = ["river", "capital", "bridge", "harbour", "festival", "mountain", "library", "railway"]


def corpus(n: int = 400) -> list[Passage]:
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        text = f"Town {i} has a {topic} built in {1700 + i % 300}; its {topic} is famous."
        out.append(Passage(i + 1, f"doc{i // 4}", i % 4, f"Town {i}", text, f"t{i}.md", 0, 60))
    return out


def script_for(steps: int) -> Callable[[ScriptRequest], ScriptedTurn]:
    """Search `steps` times (counting tool results since the last user turn), then answer."""

    def script(req: ScriptRequest) -> ScriptedTurn:
        messages = req.body.get("messages") or []
        last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
        done = sum(1 for m in messages[last_user:] if m["role"] == "tool")
        if done < steps:
            query = f"{TOPICS[done % len(TOPICS)]} town {done}"
            return ScriptedTurn(tool_calls=(("search", json.dumps({"query": query})),))
        return ScriptedTurn(content="Town 1 has a capital [1].")

    return script


StepTimes = list[float]


async def bare_loop(client: OpenAIClient, retriever: InMemoryRetriever, steps: int) -> StepTimes:
    tools = ToolBox([SearchTool()]).openai_tools()
    messages = [Message(role="system", content="Research."), Message(role="user", content="q")]
    times: StepTimes = []
    t = time.perf_counter()
    while True:
        result: ChatResult | None = None
        request = ChatRequest(messages=messages, tools=tools, tool_choice="auto", max_tokens=512)
        async for item in client.stream_chat(request):
            if isinstance(item, ChatResult):
                result = item
        assert result is not None
        if not result.tool_calls:
            return times
        messages.append(Message(role="assistant", content="", tool_calls=result.tool_calls))
        for c in result.tool_calls:
            hits = await asyncio.to_thread(retriever.search, json.loads(c.arguments)["query"], 5)
            text = "\n\n".join(f"[{i}] {h.title}\n{h.text}" for i, h in enumerate(hits, 1))
            messages.append(Message(role="tool", content=text, tool_call_id=c.id))
        now = time.perf_counter()
        times.append(now - t)
        t = now


async def thinkrag_run(agent: ResearchAgent, thread: str) -> StepTimes:
    times: StepTimes = []
    t = time.perf_counter()
    async for event in agent.run("q", thread_id=thread, run_id=thread):
        if isinstance(event, ToolResultEvent):
            now = time.perf_counter()
            times.append(now - t)
            t = now
        elif not isinstance(event, RunFinished) and event.type == "error":
            raise RuntimeError(f"thinkrag run failed: {event}")
    return times


def make_prebuilt(base_url: str, retriever: InMemoryRetriever, saver: Any) -> Any:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent
    from pydantic import SecretStr

    @tool
    def search(query: str) -> str:
        """Search the document collection."""
        hits = retriever.search(query, 5)
        return "\n\n".join(f"[{i}] {h.title}\n{h.text}" for i, h in enumerate(hits, 1))

    # `create_react_agent` is deprecated in LangGraph 1.x in favour of langchain's
    # `create_agent` (the `langchain` package, not installed here); it is still shipped.
    warnings.filterwarnings("ignore", message="create_react_agent has been moved")
    llm = ChatOpenAI(
        base_url=base_url,
        api_key=SecretStr("unused"),
        model="scripted",
        streaming=True,
        max_retries=0,
    )
    return create_react_agent(llm, [search], prompt="Research.", checkpointer=saver)


async def prebuilt_run(graph: Any, thread: str) -> StepTimes:
    times: StepTimes = []
    t = time.perf_counter()
    config = {"configurable": {"thread_id": thread}, "recursion_limit": 50}
    inputs = {"messages": [("user", "q")]}
    async for update in graph.astream(inputs, config, stream_mode="updates"):
        if "tools" in update:
            now = time.perf_counter()
            times.append(now - t)
            t = now
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    systems: list[tuple[str, Callable[[str], Awaitable[StepTimes]]]], runs: int
) -> list[tuple[str, list[float]]]:
    """Interleave the systems run by run, so load drift on a shared machine hits all alike."""
    steps: dict[str, list[float]] = {name: [] for name, _ in systems}
    for name, once in systems:
        await once(f"{name}-warmup")
    for i in range(runs):
        for name, once in systems:
            steps[name].extend(await once(f"{name}-{i}"))
    return [(name, steps[name]) for name, _ in systems]


async def idle_threads(
    make: Callable[[Path], Awaitable[tuple[Callable[[str], Awaitable[Any]], Any]]],
    threads: int,
    folder: Path,
) -> tuple[float, float]:
    """(bytes on disk, bytes of RSS) per idle thread after `threads` finished runs."""
    db = folder / "threads.sqlite"
    once, close = await make(db)
    await once("warm")
    gc.collect()
    rss0 = psutil.Process().memory_info().rss
    size0 = sum(p.stat().st_size for p in folder.glob("threads.sqlite*"))
    for i in range(threads):
        await once(f"idle-{i}")
    gc.collect()
    rss1 = psutil.Process().memory_info().rss
    size1 = sum(p.stat().st_size for p in folder.glob("threads.sqlite*"))
    await close()
    return (size1 - size0) / threads, max(0, rss1 - rss0) / threads


async def main(runs: int, steps: int, threads: int) -> None:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    retriever = InMemoryRetriever(corpus())
    server = ScriptedModelServer(script_for(steps), chunk_chars=4096)
    base_url = server.start()
    client = OpenAIClient(base_url, "scripted")
    config = AgentConfig(top_k=5, max_steps=steps + 2, max_tool_calls=steps + 2)
    agent = ResearchAgent(client, retriever, config)  # in-memory SQLite checkpoints
    conn = await aiosqlite.connect(":memory:")
    saver = AsyncSqliteSaver(conn)
    await saver.setup()
    prebuilt = make_prebuilt(base_url, retriever, saver)

    results = await measure(
        [
            ("bare loop", lambda _t: bare_loop(client, retriever, steps)),
            ("thinkrag graph", lambda t: thinkrag_run(agent, t)),
            ("langgraph prebuilt ReAct", lambda t: prebuilt_run(prebuilt, t)),
        ],
        runs,
    )

    async def thinkrag_factory(db: Path) -> tuple[Any, Any]:
        a = ResearchAgent(client, retriever, config, checkpoint_path=db)
        return (lambda t: thinkrag_run(a, t)), a.aclose

    async def prebuilt_factory(db: Path) -> tuple[Any, Any]:
        c = await aiosqlite.connect(str(db))
        s = AsyncSqliteSaver(c)
        await s.setup()
        g = make_prebuilt(base_url, retriever, s)
        return (lambda t: prebuilt_run(g, t)), c.close

    with tempfile.TemporaryDirectory() as d1, tempfile.TemporaryDirectory() as d2:
        ours_mem = await idle_threads(thinkrag_factory, threads, Path(d1))
        theirs_mem = await idle_threads(prebuilt_factory, threads, Path(d2))

    await agent.aclose()
    await conn.close()
    await client.aclose()
    server.stop()

    base_p50 = statistics.median(results[0][1])
    print(
        f"\nOrchestration per step ({runs} runs x {steps} search steps, instant scripted model)\n"
    )
    print("| system | p50 ms | p99 ms | overhead vs bare p50 (ms) | p50 ratio vs bare |")
    print("|---|---:|---:|---:|---:|")
    for name, values in results:
        p50, p99 = statistics.median(values), pct(values, 0.99)
        print(
            f"| {name} | {p50 * 1e3:.2f} | {p99 * 1e3:.2f} | {(p50 - base_p50) * 1e3:+.2f} "
            f"| {p50 / base_p50:.2f}x |"
        )
    ours = statistics.median(results[1][1])
    theirs = statistics.median(results[2][1])
    print(f"\nthinkrag graph vs prebuilt ReAct, p50 per step: {ours / theirs:.2f}x")
    print(f"\nIdle checkpointed threads ({threads} finished runs each, SQLite file)\n")
    print("| system | disk KiB / thread | RSS KiB / thread |")
    print("|---|---:|---:|")
    for name, (disk, rss) in (("thinkrag graph", ours_mem), ("prebuilt ReAct", theirs_mem)):
        print(f"| {name} | {disk / 1024:.1f} | {rss / 1024:.1f} |")
    print(f"\ndisk ratio thinkrag / prebuilt: {ours_mem[0] / max(1.0, theirs_mem[0]):.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.steps, args.threads))
