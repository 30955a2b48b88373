"""LangGraph-compatible extras through the official `langgraph-sdk` against a real server:
thread search filters are honoured, run parameters we cannot honour are refused by name,
and the `/info` and `/ok` server conventions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from testing.scripted import ScriptedModelServer
from tests.test_service_support import ThreadServer, research_turn, service_settings

QUESTION: dict[str, Any] = {
    "messages": [{"role": "user", "content": "What is the capital of Freedonia?"}]
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """One service for the module: every test makes its own threads, tagged apart."""
    model = ScriptedModelServer(research_turn, latency=0.002)
    model.start()
    try:
        tmp = tmp_path_factory.mktemp("lg-extras")
        with ThreadServer(service_settings(tmp, model.base_url)) as server:
            yield server
    finally:
        model.stop()


async def test_search_filters_by_metadata_status_values_and_ids(service: ThreadServer) -> None:
    client = get_client(url=service.url, api_key=None)
    tag = {"suite": "search-filters"}
    red = await client.threads.create(metadata={**tag, "colour": "red"})
    blue = await client.threads.create(metadata={**tag, "colour": "blue", "n": 2})
    await client.runs.wait(blue["thread_id"], "research", input=QUESTION)

    found = await client.threads.search(metadata={**tag, "colour": "red"})
    assert [t["thread_id"] for t in found] == [red["thread_id"]]
    found = await client.threads.search(metadata={**tag, "n": 2}, status="idle")
    assert [t["thread_id"] for t in found] == [blue["thread_id"]]
    assert await client.threads.search(metadata=tag, status="busy") == []
    assert await client.threads.search(metadata={"colour": "green"}) == []

    # `values` matches top-level pairs of the thread's values.
    state = (await client.threads.get(blue["thread_id"]))["values"]
    key = next(k for k, v in state.items() if isinstance(v, str) and v)
    found = await client.threads.search(values={key: state[key]})
    assert [t["thread_id"] for t in found] == [blue["thread_id"]]

    both = await client.threads.search(
        metadata=tag, ids=[red["thread_id"], blue["thread_id"]], sort_by="created_at",
        sort_order="asc",
    )  # fmt: skip
    assert [t["thread_id"] for t in both] == [red["thread_id"], blue["thread_id"]]
    page = await client.threads.search(metadata=tag, limit=1, offset=1, sort_order="asc")
    assert [t["thread_id"] for t in page] == [blue["thread_id"]]


async def test_search_select_is_refused_by_name(service: ThreadServer) -> None:
    client = get_client(url=service.url, api_key=None)
    with pytest.raises(httpx.HTTPStatusError) as info:
        await client.threads.search(select=["thread_id"])
    assert info.value.response.status_code == 400
    assert info.value.response.json()["error"]["param"] == "select"


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("interrupt_before", {"interrupt_before": ["act"]}),
    ("interrupt_after", {"interrupt_after": "*"}),
    ("multitask_strategy", {"multitask_strategy": "interrupt"}),
    ("multitask_strategy", {"multitask_strategy": "rollback"}),
    ("after_seconds", {"after_seconds": 5}),
    ("webhook", {"webhook": "https://example.com/hook"}),
    ("checkpoint_id", {"checkpoint_id": "abc"}),
]


@pytest.mark.parametrize(
    ("param", "kwargs"), REFUSED, ids=[f"{p}-{i}" for i, (p, _) in enumerate(REFUSED)]
)
async def test_unhonoured_run_parameter_is_refused_by_name(
    service: ThreadServer, param: str, kwargs: dict[str, Any]
) -> None:
    client = get_client(url=service.url, api_key=None)
    thread = await client.threads.create()
    with pytest.raises(httpx.HTTPStatusError) as info:
        await client.runs.create(thread["thread_id"], "research", input=QUESTION, **kwargs)
    error = info.value.response.json()["error"]
    assert info.value.response.status_code == 400 and error["param"] == param
    assert f"`{param}` is not supported" in error["message"]
    with pytest.raises(httpx.HTTPStatusError):  # streamed and stateless runs refuse it too
        async for _ in client.runs.stream(None, "research", input=QUESTION, **kwargs):
            pass
    assert await client.runs.list(thread["thread_id"]) == []  # nothing was started


async def test_resume_command_is_refused_by_name(service: ThreadServer) -> None:
    client = get_client(url=service.url, api_key=None)
    thread = await client.threads.create()
    with pytest.raises(httpx.HTTPStatusError) as info:
        await client.runs.wait(thread["thread_id"], "research", command={"resume": "yes"})
    error = info.value.response.json()["error"]
    assert info.value.response.status_code == 400 and error["param"] == "command"


async def test_cancel_with_rollback_is_refused_by_name(service: ThreadServer) -> None:
    client = get_client(url=service.url, api_key=None)
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "research", input=QUESTION)
    with pytest.raises(httpx.HTTPStatusError) as info:
        await client.runs.cancel(thread["thread_id"], run["run_id"], action="rollback")
    assert info.value.response.json()["error"]["param"] == "action"
    await client.runs.join(thread["thread_id"], run["run_id"])
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"


def test_info_and_ok(service: ThreadServer) -> None:
    ok = httpx.get(service.url + "/ok", timeout=10)
    assert ok.status_code == 200 and ok.json()["ok"] is True
    info = httpx.get(service.url + "/info", timeout=10).json()
    assert info["flags"]["assistants"] is True and info["flags"]["crons"] is False
    assert info["version"]
