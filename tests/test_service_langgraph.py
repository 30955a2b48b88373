"""The LangGraph-compatible API through the official `langgraph-sdk` client."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import (
    ModelFactory,
    ThreadServer,
    research_turn,
    service_settings,
    sse_events,
)

# Each test runs on the SQLite store and on Postgres (tests/fixtures/postgres.py).
pytestmark = pytest.mark.usefixtures("store_backend")

QUESTION: dict[str, Any] = {
    "messages": [{"role": "user", "content": "What is the capital of Freedonia?"}]
}


@pytest.fixture
def service(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model(research_turn, latency=0.002)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        yield server


async def test_assistant_thread_streamed_run_and_state(service: ThreadServer) -> None:
    client = get_client(url=service.url, api_key=None)
    assistants = await client.assistants.search()
    assert [a["assistant_id"] for a in assistants] == ["research"]
    thread = await client.threads.create(metadata={"user": "t"})
    parts = [
        p
        async for p in client.runs.stream(
            thread["thread_id"],
            "research",
            input=QUESTION,
            stream_mode=["values", "updates", "messages-tuple", "custom"],
        )
    ]
    events = [p.event for p in parts]
    assert events[0] == "metadata" and events[-1] == "end"
    assert {"values", "updates", "messages", "custom"} <= set(events)
    custom_types = [p.data["type"] for p in parts if p.event == "custom"]
    assert custom_types[0] == "run_started" and custom_types[-1] == "run_finished"
    final = [p.data for p in parts if p.event == "values"][-1]
    # `values` is the graph state itself (the same keys `langgraph dev` sends for this graph).
    assert final["result"]["answer"].startswith("The capital of Freedonia is Sylvania City")
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "tool", "ai"]
    updates = [next(iter(p.data)) for p in parts if p.event == "updates"]
    assert updates == ["start", "reason", "act", "reason", "answer"]  # the graph's node names
    ids = [p.id for p in parts if p.event != "end"]
    assert len(ids) == len(set(ids))  # every frame has its own id
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["sources"]["1"]["doc_id"] == "freedonia"
    history = await client.threads.get_history(thread["thread_id"])
    assert len(history) == 7  # one checkpoint per step: input, start, reason, act, reason, answer
    assert [h["next"] for h in history[:2]] == [[], ["answer"]]
    got = await client.threads.get(thread["thread_id"])
    assert got["status"] == "idle" and got["metadata"] == {"user": "t"}
    runs = await client.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success"]
    await client.threads.delete(thread["thread_id"])
    with pytest.raises(httpx.HTTPStatusError) as info:
        await client.threads.get(thread["thread_id"])
    assert info.value.response.status_code == 404


async def test_background_run_join_and_rejoin_with_last_event_id(service: ThreadServer) -> None:
    client = get_client(url=service.url, api_key=None)
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "research", input=QUESTION, stream_mode=["custom", "values"]
    )
    full = [p async for p in client.runs.join_stream(thread["thread_id"], run["run_id"])]
    framed = [p for p in full if p.event not in ("metadata", "end")]
    assert len(framed) > 4
    cut = framed[len(framed) // 2]
    rest = [
        p
        async for p in client.runs.join_stream(
            thread["thread_id"], run["run_id"], last_event_id=cut.id
        )
    ]
    rest_framed = [p for p in rest if p.event != "end"]
    assert [p.id for p in rest_framed] == [p.id for p in framed[framed.index(cut) + 1 :]]
    assert [p.data for p in rest_framed] == [p.data for p in framed[framed.index(cut) + 1 :]]
    joined = await client.runs.join(thread["thread_id"], run["run_id"])
    assert joined["result"]["answer"].startswith("The capital")
    got = await client.runs.get(thread["thread_id"], run["run_id"])
    assert got["status"] == "success"


async def test_wait_and_stateless_runs(service: ThreadServer) -> None:
    client = get_client(url=service.url, api_key=None)
    thread = await client.threads.create()
    values = await client.runs.wait(thread["thread_id"], "research", input=QUESTION)
    assert values["sources"]["1"]["number"] == 1
    stateless = await client.runs.wait(None, "research", input={"question": "Freedonia capital?"})
    assert "Sylvania City" in stateless["result"]["answer"]
    parts = [p async for p in client.runs.stream(None, "research", input=QUESTION)]
    assert parts[0].event == "metadata" and parts[-1].event == "end"


async def test_cancel_a_running_run(tmp_path: Path, scripted_model: ModelFactory) -> None:
    release = threading.Event()

    def slow(req: ScriptRequest) -> ScriptedTurn:
        release.wait(10)
        return research_turn(req)

    model = scripted_model(slow)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        client = get_client(url=server.url, api_key=None)
        thread = await client.threads.create()
        run = await client.runs.create(thread["thread_id"], "research", input=QUESTION)
        await asyncio.sleep(0.3)
        await client.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
        release.set()
        got = await client.runs.get(thread["thread_id"], run["run_id"])
        assert got["status"] == "interrupted"
        parts = [p async for p in client.runs.join_stream(thread["thread_id"], run["run_id"])]
        assert any(p.event == "error" and p.data["error"] == "cancelled" for p in parts)


def test_raw_sse_over_httpx(service: ThreadServer) -> None:
    thread = httpx.post(service.url + "/threads", json={}).json()
    with httpx.stream(
        "POST",
        f"{service.url}/threads/{thread['thread_id']}/runs/stream",
        json={"assistant_id": "research", "input": QUESTION, "stream_mode": "custom"},
        timeout=30,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["location"].endswith("/stream")
        blocks = list(sse_events(response.iter_lines()))
    assert blocks[0][0] == "metadata"
    assert blocks[-1][0] == "end"
    seqs = [int(b[2].split(".")[0]) for b in blocks[1:-1] if b[2]]
    # One custom frame per stored agent event, in order (graph chunks hold the other numbers).
    assert seqs == sorted(set(seqs)) and seqs[0] == 1
