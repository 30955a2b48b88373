"""think_first: each step is a thinking call stopped at </think>, then the action continues
that assistant text (the local Qwen2.5 profile's way of thinking in plain-text tags)."""

from __future__ import annotations

from collections.abc import Callable

from agent.config import AgentConfig
from agent.events import ReasoningDelta
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call, collect, finished, make_agent

Factory = Callable[..., ScriptedModelServer]


async def test_think_then_act_continues_the_thought(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(reasoning="The capital comes first; search it."),
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(reasoning="Sylvania City is on the Brill [1]."),
            ScriptedTurn(tool_calls=(call("answer", answer="The Brill [1].", citations=[1]),)),
        ]
    )
    config = AgentConfig(think_first=True, tool_choice="required", thinking_tokens_per_step=64)
    agent = make_agent(server.base_url, config)
    events = await collect(agent.run("Which river?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    assert done.answer == "The Brill [1]." and [s.number for s in done.sources] == [1]
    thinking = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert "capital comes first" in thinking and "on the Brill" in thinking
    think, act = server.requests[0].body, server.requests[1].body
    assert think["stop"] == ["</think>"] and think["max_tokens"] <= 64
    assert not think.get("tools") and "tool_choice" not in think
    # The action call is the thinking prompt plus the closed thought, continued.
    assert act["messages"][:-1] == think["messages"]
    assert act["messages"][-1] == {
        "role": "assistant",
        "content": "<think>\nThe capital comes first; search it.\n</think>\n\n",
    }
    assert act["continue_final_message"] and act["add_generation_prompt"] is False
    assert act["include_reasoning"] is False and act["tool_choice"] == "required"


async def test_an_answer_of_bare_citations_keeps_the_thought(scripted_model: Factory) -> None:
    """The closing call's thought stated the answer and the continuation only cited it."""
    server = scripted_model(
        [
            ScriptedTurn(reasoning="Search the capital."),
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(reasoning="Search the capital."),
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(reasoning="The capital of Freedonia is Sylvania City."),
            ScriptedTurn(content="[1]"),
        ]
    )
    config = AgentConfig(
        think_first=True,
        tool_choice="required",
        thinking_tokens_per_step=64,
        max_repeated_searches=1,
    )
    agent = make_agent(server.base_url, config)
    done = finished(await collect(agent.run("Which capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.finalized_reason == "repeated_searches"
    assert done.answer == "The capital of Freedonia is Sylvania City. [1]"
    assert [s.number for s in done.sources] == [1]
