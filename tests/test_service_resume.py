"""A server SIGKILLed mid-answer resumes after its last durable event (issue 12, D2): the
answer deltas add up to the final answer, the tool step is not redone, and nothing the
client already has (first event, reasoning, tool events, partial answer) is sent again."""

from __future__ import annotations

import json
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
