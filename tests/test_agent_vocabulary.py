"""One vocabulary end to end: stop reasons have words, tool failures are typed, budgets and
sources are one type each, and old checkpoint records still load."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

import pytest
from pydantic import ValidationError

from agent.config import AgentConfig, Budgets, RunOptions, resolve_budgets
from agent.errors import (
    ModelConnectionError,
    ModelRequestError,
    ModelServerError,
    RunErrorKind,
    run_error_kind,
)
from agent.events import RunFinished, Source, StopReason, ToolResultEvent, parse_event, reason_text
from agent.llm.types import Usage
from agent.state import ToolCallRecord, ToolResultRecord
from serving.http.errors import RUN_ERROR_STATUS
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call, collect, finished, make_agent

Factory = Callable[..., ScriptedModelServer]
LOOPING = ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),))


def test_every_stop_reason_reads_as_words() -> None:
    for reason in get_args(StopReason):
        text = reason_text(reason)
        assert text and reason not in text and "_" not in text
    assert reason_text("repeated_searches") == (
        "the searches kept repeating without finding anything new"
    )


def test_every_run_error_kind_has_one_http_status() -> None:
    assert set(RUN_ERROR_STATUS) == set(get_args(RunErrorKind))
    assert RUN_ERROR_STATUS["model_request_rejected"] == 400
    assert RUN_ERROR_STATUS["model_unreachable"] == 503
    assert RUN_ERROR_STATUS["internal_error"] == 500
    assert run_error_kind(ModelRequestError(400, "bad")) == "model_request_rejected"
    assert run_error_kind(ModelServerError(502, "down")) == "model_server_error"
    assert run_error_kind(ModelConnectionError("refused")) == "model_unreachable"


async def test_repeated_searches_finalize_prompt_and_fallback_use_words(
    scripted_model: Factory,
) -> None:
    server = scripted_model([LOOPING, LOOPING, LOOPING, ScriptedTurn(content="")])
    agent = make_agent(server.base_url)
    events = await collect(agent.run("Capital of Freedonia?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    assert done.finalized_reason == "repeated_searches"
    closing = [r.body for r in server.requests][-1]["messages"][-1]["content"]
    assert "the searches kept repeating" in closing and "repeated_searches" not in closing
    # The closing call said nothing: the evidence answer names the reason in words too.
    assert done.answer.startswith(
        "I could not finish the research (the searches kept repeating without finding"
    )


async def test_tool_failures_are_typed_and_read_as_text(scripted_model: Factory) -> None:
    server = scripted_model(
        [ScriptedTurn(tool_calls=(("lookup", "{}"),)), ScriptedTurn(content="No idea.")]
    )
    agent = make_agent(server.base_url)
    events = await collect(agent.run("Capital of Freedonia?", thread_id="t", run_id="r"))
    await agent.aclose()
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert not result.ok and result.observation.startswith("Error (unknown_tool): there is no")
    tool_message = server.requests[1].body["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == result.observation


def test_failed_result_carries_kind_and_message() -> None:
    call_record = ToolCallRecord(id="c1", name="search", arguments="{}")
    result = ToolResultRecord.failed(call_record, "budget", "the tool-call budget is used up")
    assert not result.ok and result.failure is not None
    assert (result.failure.kind, result.failure.message) == (
        "budget",
        "the tool-call budget is used up",
    )
    assert result.observation == "Error (budget): the tool-call budget is used up"


def test_checkpointed_results_of_the_old_shape_still_load() -> None:
    old = {"call_id": "c", "name": "search", "arguments": "{}", "observation": "found it"}
    assert ToolResultRecord(**old, ok=True, error_kind=None).ok
    failed = ToolResultRecord(
        **{**old, "observation": "Error (bad_arguments): query: missing"},
        ok=False,
        error_kind="bad_arguments",
    )
    assert failed.failure is not None and failed.failure.kind == "bad_arguments"
    assert failed.failure.message == "query: missing"


def test_budgets_are_one_type_from_config_to_run_options() -> None:
    config = AgentConfig(max_steps=6, top_k=3)
    budgets = resolve_budgets(config, RunOptions(max_steps=50, top_k=2))
    assert type(budgets) is Budgets and (budgets.max_steps, budgets.top_k) == (6, 2)
    assert set(RunOptions.model_fields) == set(Budgets.model_fields)
    assert RunOptions(top_k=2).overrides() == {"top_k": 2}
    with pytest.raises(ValidationError, match="max_total_tokens"):
        RunOptions(max_total_tokens=10)  # below the floor any config accepts
    with pytest.raises(ValidationError, match="max_step"):
        RunOptions.model_validate({"max_step": 3})


def test_a_finished_event_round_trips_its_sources_and_usage() -> None:
    source = Source(
        number=1, title="Freedonia", source="freedonia.md", passage_id=7, doc_id="freedonia",
        start=0, end=10, text="Sylvania City",
    )  # fmt: skip
    event = RunFinished(
        run_id="r", answer="a [1]", sources=[source], usage=Usage(prompt_tokens=3), steps=1,
        tool_calls=1, seconds=0.5, finalized_reason="repeated_searches",
    )  # fmt: skip
    back = parse_event(event.model_dump_json())
    assert back == event
    assert isinstance(back, RunFinished) and back.usage.total_tokens == 3
