"""Threads and crash recovery: SQLite checkpoints carry conversations and interrupted runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agent.config import RunOptions
from agent.events import RunError
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
from tests.agent_support import call, collect, finished, make_agent

Factory = Callable[..., ScriptedModelServer]
REPO = Path(__file__).resolve().parents[1]


async def test_follow_up_sees_the_earlier_exchange(scripted_model: Factory, tmp_path: Path) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(content="Sylvania City [1]."),
            ScriptedTurn(tool_calls=(call("search", query="Sylvania City river"),)),
            ScriptedTurn(content="The Brill [4], in Sylvania City [1]."),
        ]
    )
    db = tmp_path / "threads.sqlite"
    agent = make_agent(server.base_url, checkpoint=db)
    first = finished(await collect(agent.run("Capital of Freedonia?", thread_id="T", run_id="a")))
    await agent.aclose()
    # A new agent over the same file: the thread lives in SQLite, not in memory.
    agent = make_agent(server.base_url, checkpoint=db)
    second = finished(await collect(agent.run("What river is there?", thread_id="T", run_id="b")))
    history = await agent.thread_history("T")
    other = await agent.thread_history("unknown-thread")
    await agent.aclose()
    assert first.answer == "Sylvania City [1]."
    assert [s.number for s in second.sources] == [4, 1]  # numbers stay stable in the thread
    follow_up = server.requests[2].body["messages"]
    contents = [(m["role"], m["content"]) for m in follow_up]
    assert ("user", "Capital of Freedonia?") in contents
    assert ("assistant", "Sylvania City [1].") in contents
    assert contents[-1] == ("user", "What river is there?")
    assert [(m.role, m.content) for m in history] == [
        ("user", "Capital of Freedonia?"),
        ("assistant", "Sylvania City [1]."),
        ("user", "What river is there?"),
        ("assistant", "The Brill [4], in Sylvania City [1]."),
    ]
    assert other == []
    # Finished runs keep one checkpoint per thread: the follow-up above resumed from it.
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 'T'").fetchone()
    assert kept == (1,)
    # Each run has its own query cache and counters.
    assert second.tool_calls == 1 and second.steps == 2


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from tests.agent_support import make_agent

    async def main() -> None:
        agent = make_agent(sys.argv[1], checkpoint=Path(sys.argv[2]))
        async for event in agent.run(
            "Which river flows through the capital of Freedonia?",
            thread_id="crash", run_id="run-1",
        ):
            print(event.model_dump_json(), flush=True)

    asyncio.run(main())
    """
)


async def test_killed_run_resumes_from_its_checkpoint(
    scripted_model: Factory, tmp_path: Path
) -> None:
    second_call = threading.Event()
    chat_calls = {"n": 0}

    def script(req: ScriptRequest) -> ScriptedTurn:
        chat_calls["n"] += 1
        n = chat_calls["n"]
        if n == 1:
            return ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),))
        if n == 2:  # the child is killed while waiting for this one
            second_call.set()
            return ScriptedTurn(content="never delivered", first_byte_delay=30.0)
        if n == 3:
            return ScriptedTurn(tool_calls=(call("search", query="Sylvania City river"),))
        return ScriptedTurn(content="The river Brill [4].")

    server = scripted_model(script)
    db = tmp_path / "checkpoints.sqlite"
    script_file = tmp_path / "child.py"
    script_file.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, str(script_file), server.base_url, str(db)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert second_call.wait(timeout=120), "the child never reached its second model call"
    finally:
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    child_events = [line for line in out.decode().splitlines() if line.strip()]
    assert any('"type":"tool_result"' in line for line in child_events), err.decode()[-2000:]
    assert not any('"type":"run_finished"' in line for line in child_events)

    agent = make_agent(server.base_url, checkpoint=db)
    events = await collect(agent.resume(thread_id="crash", run_id="run-1"))
    again = await collect(agent.resume(thread_id="crash", run_id="run-1"))
    wrong = await collect(agent.resume(thread_id="crash", run_id="other"))
    await agent.aclose()
    done = finished(events)
    assert done.answer == "The river Brill [4]."
    assert done.tool_calls == 2 and done.steps == 3  # the first search was not redone
    assert [s.number for s in done.sources] == [4]
    searches = [e for e in events if e.type == "tool_call"]
    assert len(searches) == 1  # only the second hop ran after the resume
    assert chat_calls["n"] == 4
    # Resuming a finished run replays its result; an unknown run is a typed error.
    assert finished(again).answer == done.answer
    assert isinstance(wrong[-1], RunError) and wrong[-1].kind == "nothing_to_resume"


async def test_resume_keeps_the_deadline_the_run_started_with(
    scripted_model: Factory, tmp_path: Path
) -> None:
    deadline = 4.0
    second_call = threading.Event()
    chat_calls = {"n": 0, "second_at": 0.0}

    def script(req: ScriptRequest) -> ScriptedTurn:
        chat_calls["n"] += 1
        n = chat_calls["n"]
        if n == 1:
            return ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),))
        if n == 2:  # the run is interrupted while waiting for this one
            chat_calls["second_at"] = time.time()
            second_call.set()
            return ScriptedTurn(content="never delivered", first_byte_delay=30.0)
        return ScriptedTurn(content="Sylvania City [1].")  # a resume that runs on gets here

    server = scripted_model(script)
    db = tmp_path / "checkpoints.sqlite"
    agent = make_agent(server.base_url, checkpoint=db)
    run = asyncio.create_task(
        collect(
            agent.run(
                "Capital of Freedonia?",
                thread_id="late",
                run_id="run-1",
                options=RunOptions(deadline_seconds=deadline),
            )
        )
    )
    try:
        reached = await asyncio.to_thread(second_call.wait, deadline)
        assert reached, "the run never reached its second model call before its deadline"
    finally:
        run.cancel()  # the crash: the run stops mid-step, its checkpoints stay
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await agent.aclose()
    # The run started before its second model call, so its deadline has passed by now.
    await asyncio.sleep(max(0.0, chat_calls["second_at"] + deadline + 0.2 - time.time()))

    agent = make_agent(server.base_url, checkpoint=db)
    began = time.monotonic()
    events = await collect(agent.resume(thread_id="late", run_id="run-1"))
    took = time.monotonic() - began
    await agent.aclose()
    done = finished(events)
    assert done.finalized_reason == "deadline"
    assert done.answer.startswith("I could not finish the research (the time limit was reached)")
    assert chat_calls["n"] == 2  # no model call after the resume
    assert done.steps == 1 and done.tool_calls == 1  # the search before the crash counts
    assert took < deadline  # finalized promptly, not after a fresh time budget
