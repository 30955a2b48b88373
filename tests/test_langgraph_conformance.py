"""thinkrag's LangGraph surface against the real LangGraph server, side by side.

`langgraph dev` serves thinkrag's own graph from `langgraph.json` (one process for the
whole module, strict msgpack on); `thinkrag serve` runs in a thread; both talk to one
scripted model over loopback. The same langgraph-sdk session runs against each
(`tests/langgraph_conformance.py`) and every difference in status codes, object keys and
event names must be one of `EXCEPTIONS`, each with its reason (the README lists them).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from langgraph_sdk import get_client

from testing.scripted import ScriptedModelServer
from tests.langgraph_conformance import QUESTION, diff, run_script
from tests.test_service_support import (
    REPO,
    ThreadServer,
    free_port,
    research_turn,
    service_settings,
    write_passages,
)

pytestmark = pytest.mark.timeout(300)
DEV = REPO / ".venv" / "bin" / "langgraph"

# step -> why thinkrag differs from `langgraph dev` there (kept in step with the README).
EXCEPTIONS: dict[str, str] = {
    "runs.stream values+updates": (
        "the first `values` frame is the run's input: thinkrag's runner sends the question"
        " it took from the messages and the budgets it resolved (clamped to the server's"
        " maxima) where langgraph dev sends the client's raw input; every later frame agrees"
    ),
    "runs.stream events": (
        "stream_mode='events' (LangChain astream_events) is refused with a 422 naming it:"
        " the agent's model client is not a LangChain chat model, so those events would be"
        " only chain start/end records; `custom` carries the agent's token stream instead"
    ),
    "runs.list": (
        "thinkrag's run objects add `attempt`, `resumable` and `error` (runs resume after a"
        " crash) and have no `langsmith_session_name` (no LangSmith tracing)"
    ),
    "threads.copy": "not implemented yet (404)",
}


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModelServer]:
    server = ScriptedModelServer(research_turn)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModelServer):
    """`langgraph dev` serving langgraph.json, started once for the module."""
    if not DEV.exists():
        pytest.skip("langgraph-cli[inmem] is not installed (scripts/install.sh installs it)")
    tmp = tmp_path_factory.mktemp("langgraph-dev")
    port = free_port()
    env = {
        **os.environ,
        "THINKRAG_MODEL_URL": model.base_url,
        "THINKRAG_MODEL_NAME": "scripted",
        "THINKRAG_MEMORY_PASSAGES": str(write_passages(tmp / "passages.jsonl")),
        "THINKRAG_TOP_K": "2",
        "LANGGRAPH_STRICT_MSGPACK": "true",
        "LANGSMITH_TRACING": "false",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    log = (tmp / "dev.log").open("wb")
    proc = subprocess.Popen(
        [str(DEV), "dev", "--config", str(REPO / "langgraph.json"), "--port", str(port),
         "--no-browser", "--no-reload", "--allow-blocking"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/ok", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((tmp / "dev.log").read_text()[-3000:])
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    log.close()


@pytest.fixture(scope="module")
def thinkrag_server(tmp_path_factory: pytest.TempPathFactory, model: ScriptedModelServer):
    tmp = tmp_path_factory.mktemp("thinkrag")
    with ThreadServer(service_settings(tmp, model.base_url)) as server:
        yield server.url


async def test_same_session_same_answers(dev_server: str, thinkrag_server: str) -> None:
    theirs = await run_script(dev_server)
    ours = await run_script(thinkrag_server)
    found = diff(ours, theirs)
    for step, a, b in found:
        print(f"DIFF {step}\n  thinkrag: {a}\n  langgraph dev: {b}")
    print(f"{len(found)} differing steps of {len(theirs)}")
    unexplained = [step for step, _, _ in found if step not in EXCEPTIONS]
    assert not unexplained, f"undocumented differences: {unexplained}"


async def test_graph_multi_turn_under_strict_msgpack(dev_server: str) -> None:
    """The second question on a thread reads the first one's checkpoint back (strict)."""
    client = get_client(url=dev_server, api_key=None)
    thread = await client.threads.create()
    tid = thread["thread_id"]
    first = await client.runs.wait(tid, "research", input={"question": QUESTION})
    second = await client.runs.wait(
        tid, "research", input={"messages": [{"type": "human", "content": "And again?"}]}
    )
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["result"]["answer"].startswith("The capital of Freedonia is Sylvania City")
    assert second["result"]["answer"].startswith("The capital of Freedonia is Sylvania City")
    # The scripted model answers at once when the transcript already holds a search result.
    kinds = [m["type"] for m in second["messages"]]
    assert kinds == ["human", "ai", "tool", "ai", "human", "ai"]
    assert second["messages"][4]["content"] == "And again?"
    assert second["current_question"] == "And again?" and second["question"] == ""
    assert [t["kind"] for t in second["exchanges"]] == ["question", "answer"] * 2
    runs = await client.runs.list(tid)
    assert [r["status"] for r in runs] == ["success", "success"]


async def test_graph_input_budgets_as_plain_data(dev_server: str) -> None:
    client = get_client(url=dev_server, api_key=None)
    out = await client.runs.wait(
        None, "research", input={"question": QUESTION, "budgets": {"max_steps": 1}}
    )
    assert isinstance(out, dict)
    assert out["budgets"]["max_steps"] == 1
    assert out["result"]["finalized_reason"] == "max_steps"


async def test_remote_graph_invoke_stream_state_and_update(thinkrag_server: str) -> None:
    """LangGraph's own RemoteGraph drives thinkrag like any LangGraph server."""
    from langgraph.pregel.remote import RemoteGraph

    client = get_client(url=thinkrag_server, api_key=None)
    thread = await client.threads.create()
    config = {"configurable": {"thread_id": thread["thread_id"]}}
    remote = RemoteGraph("research", url=thinkrag_server)
    out = await remote.ainvoke({"question": QUESTION}, config)
    assert out["result"]["answer"].startswith("The capital of Freedonia is Sylvania City")
    nodes = [
        next(iter(chunk))
        async for chunk in remote.astream({"question": "Again?"}, config, stream_mode="updates")
    ]
    assert nodes == ["start", "reason", "answer"]  # the transcript already holds the search
    state = await remote.aget_state(config)
    assert state.values["current_question"] == "Again?" and state.next == ()
    older = await remote.aget_state(state.parent_config)  # time travel by checkpoint
    assert older.next == ("answer",)
    updated = await remote.aupdate_state(config, {"question": "edited"}, as_node="answer")
    after = await remote.aget_state(updated)
    assert after.values["question"] == "edited"
    assert (
        after.parent_config["configurable"]["checkpoint_id"]
        == (state.config["configurable"]["checkpoint_id"])
    )


async def test_thread_patch_merges_metadata_and_counts(thinkrag_server: str) -> None:
    client = get_client(url=thinkrag_server, api_key=None)
    thread = await client.threads.create(metadata={"user": "u1", "topic": "a"})
    patched = await client.threads.update(thread["thread_id"], metadata={"topic": "b"})
    assert patched["metadata"] == {"user": "u1", "topic": "b"}
    assert (await client.threads.get(thread["thread_id"]))["metadata"]["topic"] == "b"
    assert await client.threads.count(metadata={"user": "u1"}) == 1
    assert await client.assistants.count() == 1
