"""Budgets end runs gracefully: finalize answers from the evidence and says why."""

from __future__ import annotations

from collections.abc import Callable

from agent.config import AgentConfig, RunOptions, resolve_budgets
from agent.events import ReasoningDelta, ToolResultEvent
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
from tests.agent_support import call, collect, finished, make_agent

Factory = Callable[..., ScriptedModelServer]


def keeps_searching(final_answer: str) -> Callable[[ScriptRequest], ScriptedTurn]:
    """A model that always searches something new, and answers when offered no tools."""
    queries = ["capital of Freedonia", "Sylvania City river", "marmots", "cheese", "toys"]
    count = {"n": 0}

    def script(req: ScriptRequest) -> ScriptedTurn:
        if not req.body.get("tools"):
            return ScriptedTurn(content=final_answer)
        count["n"] += 1
        query = queries[(count["n"] - 1) % len(queries)] + f" {count['n']}"
        return ScriptedTurn(reasoning="more", tool_calls=(call("search", query=query),))

    return script


def test_run_options_are_clamped_to_the_config() -> None:
    config = AgentConfig(max_steps=5, deadline_seconds=60, top_k=4)
    b = resolve_budgets(config, RunOptions(max_steps=50, deadline_seconds=10, top_k=2))
    assert (b.max_steps, b.deadline_seconds, b.top_k) == (5, 10, 2)
    assert b.recursion_limit > 2 * b.max_steps


async def test_step_budget_finalizes_with_the_reason(scripted_model: Factory) -> None:
    server = scripted_model(keeps_searching("From what I found: Sylvania City [1] [99]."))
    agent = make_agent(server.base_url)
    events = await collect(
        agent.run("q", thread_id="t", run_id="r", options=RunOptions(max_steps=3))
    )
    await agent.aclose()
    done = finished(events)
    assert done.finalized_reason == "max_steps"
    assert done.steps == 3 and done.tool_calls == 3
    assert done.answer == "From what I found: Sylvania City [1]."
    assert done.removed_citations == [99]
    last = server.requests[-1].body
    assert "tools" not in last or not last["tools"]
    assert "step budget" in last["messages"][-1]["content"]


async def test_tool_call_budget_offers_no_more_tools(scripted_model: Factory) -> None:
    server = scripted_model(keeps_searching("Sylvania City [1]."))
    agent = make_agent(server.base_url, AgentConfig(top_k=2, max_tool_calls=2))
    done = finished(await collect(agent.run("q", thread_id="t", run_id="r")))
    await agent.aclose()
    # After two searches the model is asked without tools and answers normally.
    assert done.tool_calls == 2 and done.finalized_reason is None
    assert done.answer == "Sylvania City [1]."


async def test_token_budget_finalizes_from_evidence(scripted_model: Factory) -> None:
    script = [
        ScriptedTurn(prompt_tokens=300, tool_calls=(call("search", query="capital of Freedonia"),)),
        ScriptedTurn(prompt_tokens=300, tool_calls=(call("search", query="river Brill"),)),
    ]
    server = scripted_model(script)
    agent = make_agent(server.base_url)
    events = await collect(
        agent.run("q", thread_id="t", run_id="r", options=RunOptions(max_total_tokens=610))
    )
    await agent.aclose()
    done = finished(events)
    assert done.finalized_reason == "max_total_tokens"
    assert len(server.requests) == 2  # no model call after the budget ran out
    assert done.answer.startswith("I could not finish the research (the token budget")
    assert done.sources and all(s.number in {1, 2, 3, 4} for s in done.sources)
    assert done.usage.prompt_tokens == 600


async def test_deadline_finalizes_with_the_reason(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(content="too late", first_byte_delay=5.0),
        ]
    )
    agent = make_agent(server.base_url)
    events = await collect(
        agent.run("q", thread_id="t", run_id="r", options=RunOptions(deadline_seconds=1.5))
    )
    await agent.aclose()
    done = finished(events)
    assert done.finalized_reason == "deadline"
    assert "time limit" in done.answer and "too late" not in done.answer
    assert done.tool_calls == 1


async def test_model_that_never_stops_thinking(scripted_model: Factory) -> None:
    server = scripted_model(
        lambda req: ScriptedTurn(reasoning="hmm, let me think again. " * 4000),
        chunk_chars=40,
        latency=0.005,
    )
    agent = make_agent(server.base_url)
    events = await collect(
        agent.run("q", thread_id="t", run_id="r", options=RunOptions(thinking_tokens_per_step=50))
    )
    await agent.aclose()
    done = finished(events)
    assert done.finalized_reason == "thinking_budget"
    per_step: dict[int, int] = {}
    for e in events:
        if isinstance(e, ReasoningDelta):
            per_step[e.step] = per_step.get(e.step, 0) + len(e.text)
    # Two steps, then the finalize call: each read stopped within one chunk (~4 chars a
    # token) of the 50-token budget instead of reading the 100 kB of reasoning.
    assert len(server.requests) == 3 and set(per_step) == {1, 2}
    assert sum(per_step.values()) <= 3 * (50 * 4 + 40)
    assert server.wait_for_disconnect(timeout=5)  # we hung up instead of reading it all
    assert not [e for e in events if isinstance(e, ToolResultEvent)]
    assert done.answer.startswith("I could not finish the research")
    # The second step was told to stop thinking and act.
    nudged = server.requests[1].body["messages"][-1]["content"]
    assert "thinking budget" in nudged
