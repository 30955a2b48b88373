"""A server SIGKILLed mid-answer resumes after its last durable event (issue 12, D2): the
answer deltas add up to the final answer, the tool step is not redone, and nothing the
client already has (first event, reasoning, tool events, partial answer) is sent again.
A server killed while a step's tools run does not run a call that had already returned."""

from __future__ import annotations

import contextlib
import http.server
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import (
    ModelFactory,
    ProcessServer,
    free_port,
    sse_events,
    write_config,
    write_passages,
)

pytestmark = pytest.mark.slow
ANSWER = "The capital of Freedonia is Sylvania City [1], on the river."
THOUGHT = "The search result names the capital, so I can answer now."


def _script(req: ScriptRequest) -> ScriptedTurn:
    if any(m.get("role") == "tool" for m in req.body.get("messages", [])):
        return ScriptedTurn(reasoning=THOUGHT, content=ANSWER, latency=0.15)
    return ScriptedTurn(
        reasoning="I should look it up.",
        tool_calls=(("search", json.dumps({"query": "capital of Freedonia"})),),
    )


def _events(url: str, run_id: str, *, until: int | None = None) -> list:
    """The run's events; with `until`, stop once that many deltas of the answer step
    (step 2: its reasoning, then its answer) have arrived."""
    got = []
    with httpx.stream("GET", f"{url}/v1/runs/{run_id}/events", timeout=60) as response:
        for event, data, ident in sse_events(response.iter_lines()):
            got.append((event, json.loads(data), ident))
            answering = [d for e, d, _ in got if e.endswith("_delta") and d["step"] == 2]
            if until is not None and len(answering) >= until:
                break
    return got


@pytest.mark.parametrize("kills", [1, 2])
def test_sigkill_mid_answer_resumes_without_repeating(
    tmp_path: Path, scripted_model: ModelFactory, kills: int
) -> None:
    model = scripted_model(_script, chunk_chars=4)
    config = write_config(tmp_path / "service.toml", {
        "memory_passages": write_passages(tmp_path / "passages.jsonl"),
        "model_url": model.base_url, "model_name": "scripted",
        "db_path": tmp_path / "service.db", "top_k": 2, "sse_keepalive_seconds": 1.0,
    })  # fmt: skip
    server = ProcessServer(config, free_port())
    server.start()
    try:
        run_id = httpx.post(server.url + "/v1/runs", json={"question": "Capital?"}).json()["run_id"]
        for k in range(kills):
            # Kill while the answer step streams (a few deltas out, more to come).
            partial = _events(server.url, run_id, until=3 + 3 * k)
            assert partial[-1][0].endswith("_delta"), partial[-1]
            server.kill()
            server.start()
        events = _events(server.url, run_id)
        run = httpx.get(f"{server.url}/v1/runs/{run_id}").json()
    finally:
        server.stop()
    assert events[-1][0] == "end" and run["status"] == "success", run
    types = [e for e, _, _ in events]
    finished = next(d for e, d, _ in events if e == "run_finished")
    answer = "".join(d["text"] for e, d, _ in events if e == "answer_delta")
    assert answer == finished["answer"] == ANSWER
    assert types.count("run_started") == 1
    assert types.count("run_resumed") == kills
    assert types.count("tool_call") == 1 and types.count("tool_result") == 1
    reasoning = "".join(d["text"] for e, d, _ in events if e == "reasoning_delta")
    assert reasoning == "I should look it up." + THOUGHT  # nothing thought twice
    ids = [int(i) for _, _, i in events if i is not None]
    assert ids == list(range(1, len(ids) + 1))  # no gap, no repeat

    # The tool step ran once: one model request decided the search, and the search's
    # result went out once; only the cut-off answer step was asked again.
    def decides(r: ScriptRequest) -> bool:
        return not any(m.get("role") == "tool" for m in r.body.get("messages", []))

    deciding = [r for r in model.requests if decides(r)]
    assert len(deciding) == 1
    assert 2 <= len(model.requests) <= 2 + kills  # the answer step asked again per restart


def test_a_re_run_that_writes_another_answer_continues_the_sent_one() -> None:
    """A sampling model answers differently the second time: what was sent stays, the new
    answer follows it, and `run_finished.answer` is exactly what the deltas add up to."""
    from agent.events import AnswerDelta, Event, RunFinished, RunStarted, Usage
    from serving.http.resume import ResumeFilter

    run = "r1"
    stored: list[Event] = [RunStarted(run_id=run, thread_id="t", question="q"),
              AnswerDelta(run_id=run, step=2, text="Sylvania ")]  # fmt: skip
    gate = ResumeFilter(stored)
    out = [*gate.admit(RunStarted(run_id=run, thread_id="t", question="q"))]
    out += gate.admit(AnswerDelta(run_id=run, step=2, text="Freedonia's capital"))
    end = RunFinished(run_id=run, step=2, answer="Freedonia's capital", sources=[],
                      usage=Usage(), steps=2, tool_calls=1, seconds=1.0)  # fmt: skip
    out += gate.admit(end)
    deltas = [e.text for e in [*stored, *out] if isinstance(e, AnswerDelta)]
    finished = out[-1]
    assert isinstance(finished, RunFinished) and not any(isinstance(e, RunStarted) for e in out)
    assert "".join(deltas) == finished.answer == "Sylvania \n\nFreedonia's capital"


class _Pages:
    """A real web server for fetch_url: /fast answers at once; the first /slow request
    hangs until `release` (the service is killed while it waits), later ones answer."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.release = threading.Event()
        self.slow_waiting = threading.Event()
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                pages.hits[self.path] += 1
                if self.path == "/slow" and pages.hits[self.path] == 1:
                    pages.slow_waiting.set()
                    pages.release.wait(60)
                body = f"<html><title>{self.path}</title><p>Page {self.path}.</p></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                with contextlib.suppress(OSError):  # the first /slow caller is dead by now
                    self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @contextlib.contextmanager
    def running(self) -> Iterator[_Pages]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            self.server.shutdown()
            self.server.server_close()


def _journaled(checkpoints: Path) -> int:
    """How many tool outcomes the killed server had made durable."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{checkpoints}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM tool_results").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_while_tools_run_does_not_run_a_finished_call_again(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    pages = _Pages()
    answer = "Both pages were read [1] [2]."

    def script(req: ScriptRequest) -> ScriptedTurn:
        if any(m.get("role") == "tool" for m in req.body.get("messages", [])):
            return ScriptedTurn(reasoning="Both pages are in.", content=answer)
        return ScriptedTurn(
            reasoning="I should read both pages.",
            tool_calls=(
                ("fetch_url", json.dumps({"url": pages.url + "/fast"})),
                ("fetch_url", json.dumps({"url": pages.url + "/slow"})),
            ),
        )

    model = scripted_model(script, chunk_chars=4)
    db = tmp_path / "service.db"
    config = write_config(tmp_path / "service.toml", {
        "memory_passages": write_passages(tmp_path / "passages.jsonl"),
        "model_url": model.base_url, "model_name": "scripted", "db_path": db,
        "top_k": 2, "sse_keepalive_seconds": 1.0, "enable_fetch_url": True,
        "fetch_allow_hosts": ["127.0.0.1"], "fetch_timeout_seconds": 30.0,
    })  # fmt: skip
    server = ProcessServer(config, free_port())
    with pages.running():
        server.start()
        try:
            run_id = httpx.post(server.url + "/v1/runs", json={"question": "Pages?"}).json()[
                "run_id"
            ]
            assert pages.slow_waiting.wait(60), "the slow page was never requested"
            deadline = time.monotonic() + 30
            while _journaled(db.with_name("service.checkpoints.sqlite")) < 1:
                assert time.monotonic() < deadline, "the fast call's outcome was never recorded"
                time.sleep(0.05)
            server.kill()  # /fast has returned, /slow is in flight, the step is unfinished
            server.start()
            events = _events(server.url, run_id)
            run = httpx.get(f"{server.url}/v1/runs/{run_id}").json()
        finally:
            server.stop()
    assert run["status"] == "success", run
    assert pages.hits["/fast"] == 1  # returned before the kill: not fetched again
    assert pages.hits["/slow"] == 2  # in flight at the kill: it had to run again
    types = [e for e, _, _ in events]
    assert types.count("tool_call") == 2 and types.count("tool_result") == 2
    assert all(d["ok"] for e, d, _ in events if e == "tool_result")
    finished = next(d for e, d, _ in events if e == "run_finished")
    deltas = "".join(d["text"] for e, d, _ in events if e == "answer_delta")
    assert deltas == finished["answer"] == answer
    ids = [int(i) for _, _, i in events if i is not None]
    assert ids == list(range(1, len(ids) + 1))


def test_journal_keeps_every_outcome_shape() -> None:
    """Search hits, fetched sources, plain passages and failures come back as recorded."""
    from agent.events import Source
    from agent.state import ToolCallRecord, ToolResultRecord
    from agent.tools.base import ToolOutput
    from agent.tools.journal import decode, encode
    from retrieval.types import Hit, Passage

    passage = Passage(7, "d", 0, "T", "text", "d.md", 0, 4)
    output = ToolOutput(
        text="found",
        passages=(Hit.scored(passage, 0.5), passage, Source.cite(3, passage)),
        scores=(0.5, 0.1, 0.0),
        cached=True,
        cache_key="q",
    )
    assert decode(encode(output)) == output
    failed = ToolResultRecord.failed(ToolCallRecord(id="c", name="x", arguments="{}"),
                                     "tool_failed", "boom")  # fmt: skip
    assert decode(encode(failed)) == failed
