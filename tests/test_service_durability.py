"""Crash, outage and slow-client behaviour of the service, through real servers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import (
    ModelFactory,
    ProcessServer,
    ThreadServer,
    free_port,
    research_turn,
    service_settings,
    sse_events,
    store_config,
    write_config,
    write_passages,
)

# Each test runs on the SQLite store and on Postgres (tests/fixtures/postgres.py).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("store_backend")]
Q = {"question": "What is the capital of Freedonia?"}


def _stream(url: str, thread: str, run: str, last: str | None, stop_after: str | None = None):
    """Frames of a run stream (custom mode); stops early after a custom event of that type."""
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


def test_sigkill_mid_run_then_restart_resumes_and_rejoin_is_exact(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    release = threading.Event()

    def gated(req: ScriptRequest) -> ScriptedTurn:
        if any(m.get("role") == "tool" for m in req.body.get("messages", [])):
            release.wait(20)  # the answer step hangs until the first server is dead
        return research_turn(req)

    model = scripted_model(gated)
    config = write_config(tmp_path / "service.toml", {
        "memory_passages": write_passages(tmp_path / "passages.jsonl"),
        "model_url": model.base_url, "model_name": "scripted",
        "db_path": tmp_path / "service.db", "top_k": 2, "sse_keepalive_seconds": 1.0,
        **store_config(),
    })  # fmt: skip
    server = ProcessServer(config, free_port())
    server.start()
    try:
        thread = httpx.post(server.url + "/threads", json={}).json()["thread_id"]
        run = httpx.post(f"{server.url}/threads/{thread}/runs", json={
            "assistant_id": "research", "input": Q, "stream_mode": "custom",
        }).json()["run_id"]  # fmt: skip
        first = _stream(server.url, thread, run, None, stop_after="tool_result")
        assert first[-1][1]["type"] == "tool_result"
        server.kill()
        release.set()
        server.start()
        rest = _stream(server.url, thread, run, first[-1][2])
        status = httpx.get(f"{server.url}/threads/{thread}/runs/{run}").json()
    finally:
        server.stop()
    frames = [f for f in first + rest if f[0] == "custom"]
    ids = [f[2] for f in frames]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    seqs = [int(i.split(".")[0]) for i in ids]
    assert seqs == list(range(1, len(seqs) + 1)), "an event was lost"
    types = [f[1]["type"] for f in frames]
    assert "run_resumed" in types and types[-1] == "run_finished"
    assert rest[-1][0] == "end" and rest[-1][1]["status"] == "success"
    assert status["status"] == "success" and status["attempt"] == 2


def test_model_server_stopped_mid_run(tmp_path: Path, scripted_model: ModelFactory) -> None:
    model = scripted_model(
        lambda req: ScriptedTurn(reasoning="thinking " * 200, content="x"),
        latency=0.05, chunk_chars=8,
    )  # fmt: skip
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        started = httpx.post(server.url + "/v1/runs", json=Q).json()
        run_id = started["run_id"]
        deadline = time.monotonic() + 10
        while not model.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        model.stop()
        with httpx.stream("GET", f"{server.url}/v1/runs/{run_id}/events", timeout=60) as r:
            events = list(sse_events(r.iter_lines()))
        errors = [json.loads(d) for e, d, _ in events if e == "error"]
        assert errors and errors[-1]["resumable"] is True
        assert errors[-1]["kind"].startswith("model_")
        assert events[-1][0] == "end"
        run = httpx.get(f"{server.url}/v1/runs/{run_id}").json()
        assert run["status"] == "error" and run["resumable"] is True
        assert httpx.get(server.url + "/healthz").status_code == 200  # service stays up
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and "cannot reach" in ready.json()["checks"]["model"]
        # The model comes back at the same address: the resumed run finishes from its
        # checkpoint and the service is ready again.
        model.start(port=int(model.base_url.rsplit(":", 1)[1].split("/")[0]))
        again = httpx.post(f"{server.url}/v1/runs/{run_id}/resume")
        assert again.status_code == 202 and again.json()["status"] == "pending"
        with httpx.stream("GET", f"{server.url}/v1/runs/{run_id}/events", timeout=60) as r:
            resumed = list(sse_events(r.iter_lines()))
        assert resumed[-1][0] == "end"
        run = httpx.get(f"{server.url}/v1/runs/{run_id}").json()
        assert run["status"] == "success", run
        assert [e for e, _, _ in resumed][-2:] == ["run_finished", "end"]
        assert httpx.get(server.url + "/readyz").status_code == 200


def test_stalled_readers_do_not_hold_the_run_back(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    model = scripted_model(research_turn, chunk_chars=1)  # one event per character
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        thread = httpx.post(server.url + "/threads", json={}).json()["thread_id"]
        run = httpx.post(f"{server.url}/threads/{thread}/runs", json={
            "assistant_id": "research", "input": Q,
            "stream_mode": ["custom", "messages-tuple", "values"],
        }).json()["run_id"]  # fmt: skip
        clients = [httpx.Client(timeout=60) for _ in range(4)]
        stalled = [
            c.send(c.build_request("GET", f"{server.url}/threads/{thread}/runs/{run}/stream"),
                   stream=True)
            for c in clients
        ]  # fmt: skip
        joined = httpx.get(f"{server.url}/threads/{thread}/runs/{run}/join", timeout=60).json()
        assert joined["result"]["answer"].startswith("The capital")  # finished while nobody read
        for response in stalled:
            frames = list(sse_events(response.iter_lines()))
            ids = [i for e, _, i in frames if e != "end"]
            assert len(ids) == len(set(ids)) and frames[-1][0] == "end"
            response.close()
        for c in clients:
            c.close()
