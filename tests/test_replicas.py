"""Several `thinkrag serve` processes over one real Postgres (issue 16): they share
threads and runs, a run is executed by exactly one of them, a run whose replica is
SIGKILLed is finished by another from its checkpoint, and a client that rejoins on the
survivor with Last-Event-ID gets every event exactly once. The model is the scripted
one, speaking the real OpenAI wire protocol to every replica."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from serving.http.postgres_store import PostgresStore
from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import (
    ModelFactory,
    ProcessServer,
    free_port,
    research_turn,
    sse_events,
    write_config,
    write_passages,
)

pytestmark = pytest.mark.slow
Q = {"question": "What is the capital of Freedonia?"}


@contextmanager
def replicas(tmp_path: Path, model_url: str, database_url: str, n: int = 2) -> Iterator[list]:
    """`n` service processes over one database (each its own port; a 1 s lease)."""
    config = write_config(tmp_path / "service.toml", {
        "memory_passages": write_passages(tmp_path / "passages.jsonl"),
        "model_url": model_url, "model_name": "scripted", "top_k": 2,
        "sse_keepalive_seconds": 1.0, "database_url": database_url, "lease_seconds": 1.0,
        "db_path": tmp_path / "unused.db",
    })  # fmt: skip
    servers = [ProcessServer(config, free_port()) for _ in range(n)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def gated_model(scripted_model: ModelFactory, gate: threading.Event) -> Any:
    """Searches, then waits at the answer step until `gate` opens."""

    def script(req: ScriptRequest) -> ScriptedTurn:
        if any(m.get("role") == "tool" for m in req.body.get("messages", [])):
            gate.wait(30)
        return research_turn(req)

    return scripted_model(script)


def stream(url: str, thread: str, run: str, last: str | None = None, stop_after: str = ""):
    """(event, data, id) of a run's custom-mode stream; stops after a custom event of type
    `stop_after`."""
    headers = {"Last-Event-ID": last} if last else {}
    got = []
    with httpx.stream(
        "GET", f"{url}/threads/{thread}/runs/{run}/stream",
        params={"stream_mode": "custom"}, headers=headers, timeout=60,
    ) as response:  # fmt: skip
        for event, data, ident in sse_events(response.iter_lines()):
            got.append((event, json.loads(data), ident))
            if stop_after and event == "custom" and json.loads(data)["type"] == stop_after:
                break
    return got


def start_run(url: str) -> tuple[str, str]:
    thread = httpx.post(url + "/threads", json={}).json()["thread_id"]
    run = httpx.post(f"{url}/threads/{thread}/runs", json={
        "assistant_id": "research", "input": Q, "stream_mode": "custom",
    }).json()["run_id"]  # fmt: skip
    return thread, run


def test_replicas_share_threads_runs_and_live_streams(
    tmp_path: Path, scripted_model: ModelFactory, postgres_url: str
) -> None:
    gate = threading.Event()
    model = gated_model(scripted_model, gate)
    with replicas(tmp_path, model.base_url, postgres_url) as (a, b):
        thread, run = start_run(a.url)  # executed by a
        live = stream(b.url, thread, run, stop_after="tool_result")  # followed on b
        assert live[-1][1]["type"] == "tool_result"
        gate.set()
        rest = stream(b.url, thread, run, last=live[-1][2])
        assert rest[-1][0] == "end" and rest[-1][1]["status"] == "success"
        assert [f[1]["type"] for f in rest if f[0] == "custom"][-1] == "run_finished"
        state = httpx.get(f"{b.url}/threads/{thread}/state").json()
        assert "Sylvania City" in json.dumps(state["values"])
        assert [r["run_id"] for r in httpx.get(f"{b.url}/threads/{thread}/runs").json()] == [run]
        # a thread made on b, a run waited for on a
        other = httpx.post(b.url + "/threads", json={}).json()["thread_id"]
        done = httpx.post(
            f"{a.url}/threads/{other}/runs/wait", json={"assistant_id": "research", "input": Q}
        )
        assert done.status_code == 200 and "Sylvania City" in done.text
        ready = httpx.get(b.url + "/readyz").json()
        assert ready["checks"]["database"] == "ok"
        assert ready["checks"]["store"].startswith("postgresql://")
        metrics = httpx.get(a.url + "/metrics").text
        assert "thinkrag_leases_held 0.0" in metrics and "thinkrag_store_queue_depth" in metrics


def test_sigkill_of_the_executing_replica_the_survivor_finishes_every_event_once(
    tmp_path: Path, scripted_model: ModelFactory, postgres_url: str
) -> None:
    gate = threading.Event()
    model = gated_model(scripted_model, gate)
    with replicas(tmp_path, model.base_url, postgres_url) as (a, b):
        thread, run = start_run(a.url)
        first = stream(a.url, thread, run, stop_after="tool_result")
        assert first[-1][1]["type"] == "tool_result"
        a.kill()  # mid-run: its answer step is waiting on the model
        killed = time.monotonic()
        gate.set()
        rest = stream(b.url, thread, run, last=first[-1][2])  # rejoin on the survivor
        took = time.monotonic() - killed
        status = httpx.get(f"{b.url}/threads/{thread}/runs/{run}").json()
    frames = [f for f in first + rest if f[0] == "custom"]
    ids = [f[2] for f in frames]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    seqs = [int(i.split(".")[0]) for i in ids]
    assert seqs == list(range(1, len(seqs) + 1)), "an event was lost"
    types = [f[1]["type"] for f in frames]
    assert types.count("run_started") == 1 and types.count("tool_result") == 1
    assert "run_resumed" in types and types[-1] == "run_finished"
    assert rest[-1][0] == "end" and rest[-1][1]["status"] == "success"
    assert status["status"] == "success" and status["attempt"] == 2
    assert took < 30, f"the survivor took {took:.1f}s to finish the run"


def test_replicas_racing_for_the_same_runs_execute_each_exactly_once(
    tmp_path: Path, scripted_model: ModelFactory, postgres_url: str
) -> None:
    model = scripted_model(research_turn)
    with replicas(tmp_path, model.base_url, postgres_url, n=3) as servers:
        # Runs queued where every replica sees them at once (none submitted them).
        store = PostgresStore(postgres_url)
        try:
            for n in range(6):
                store.create_thread(f"t{n}", {}, owner="")
                store.create_run(
                    run_id=f"r{n}", thread_id=f"t{n}", assistant_id="research",
                    question=Q["question"], options={}, metadata={}, owner="", base_state={},
                )  # fmt: skip
            ends = [
                httpx.get(f"{servers[n % 3].url}/threads/t{n}/runs/r{n}/join", timeout=60)
                for n in range(6)
            ]
            events = {f"r{n}": store.events_after(f"r{n}", 0, limit=500) for n in range(6)}
            runs = {f"r{n}": store.get_run(f"r{n}") for n in range(6)}
        finally:
            store.close()
    assert all(e.status_code == 200 for e in ends)
    for run_id, rows in events.items():
        kinds = Counter(json.loads(r.data)["type"] for r in rows)
        assert kinds["run_started"] == 1 and kinds["run_finished"] == 1, (run_id, kinds)
        record = runs[run_id]
        assert record is not None and record.status == "success" and record.attempt == 1
    assert len(model.requests) == 6 * 2  # one search step and one answer step per run


def test_cancel_from_the_other_replica(
    tmp_path: Path, scripted_model: ModelFactory, postgres_url: str
) -> None:
    gate = threading.Event()
    model = gated_model(scripted_model, gate)
    try:
        with replicas(tmp_path, model.base_url, postgres_url) as (a, b):
            thread, run = start_run(a.url)  # executed by a, stuck at its answer step
            stream(b.url, thread, run, stop_after="tool_result")
            cancelled = httpx.post(
                f"{b.url}/threads/{thread}/runs/{run}/cancel", params={"wait": 1}, timeout=30
            )
            assert cancelled.status_code in (200, 202, 204), cancelled.text
            final = httpx.get(f"{a.url}/threads/{thread}/runs/{run}").json()
            assert final["status"] == "interrupted", final
            frames = stream(a.url, thread, run)
            errors = [f[1] for f in frames if f[0] == "custom" and f[1]["type"] == "error"]
            assert errors and errors[-1]["kind"] == "cancelled"
            assert frames[-1][0] == "end"
    finally:
        gate.set()
