"""The json and tags action protocols, and prompt-prefix stability across steps."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

from agent.actions.tags import BEGIN_RESULT, BEGIN_TOOL, END_QUERY, END_RESULT, END_TOOL
from agent.config import AgentConfig
from agent.context import estimate_tokens
from agent.events import RunError, ToolResultEvent
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call, collect, finished, make_agent

Factory = Callable[..., ScriptedModelServer]
QUESTION = "Which river flows through the capital of Freedonia?"


def action(**fields: object) -> str:
    return json.dumps(fields)


async def test_json_protocol_runs_the_same_loop(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(
                reasoning="Capital first.",
                content=action(action="search", query="capital of Freedonia"),
            ),
            ScriptedTurn(content="this is not json"),
            ScriptedTurn(content=action(action="search", query="Sylvania City river")),
            ScriptedTurn(
                content=action(action="answer", answer="The river Brill.", citations=[4, 42])
            ),
        ]
    )
    agent = make_agent(server.base_url, AgentConfig(protocol="json", top_k=2))
    events = await collect(agent.run(QUESTION, thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    assert done.answer == "The river Brill."
    assert [s.number for s in done.sources] == [4] and done.removed_citations == [42]
    assert done.tool_calls == 2 and done.steps == 4
    assert len([e for e in events if isinstance(e, ToolResultEvent)]) == 2
    first = server.requests[0].body
    schema = first["response_format"]["json_schema"]["schema"]
    names = [b["properties"]["action"]["enum"][0] for b in schema["anyOf"]]
    assert names == ["search", "open", "calculator", "answer"]
    search = schema["anyOf"][0]
    assert search["properties"]["query"]["maxLength"] == 300
    assert search["additionalProperties"] is False
    assert "tools" not in first or not first["tools"]
    # The malformed turn was reported back and the model recovered.
    third = server.requests[2].body["messages"]
    assert "could not be used" in third[-1]["content"]
    assert third[-2]["content"].startswith("Result of search:\n[1] Freedonia")


async def test_json_closing_answer_written_as_an_action_is_unwrapped(
    scripted_model: Factory,
) -> None:
    search = action(action="search", query="capital of Freedonia")
    closing = action(action="answer", answer="Sylvania City", citations=[1, 2])
    server = scripted_model([ScriptedTurn(content=search), ScriptedTurn(content=closing)])
    agent = make_agent(server.base_url, AgentConfig(protocol="json", top_k=2, max_steps=1))
    done = finished(await collect(agent.run("Capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.finalized_reason == "max_steps"
    assert done.answer == "Sylvania City [1][2]"
    assert [s.number for s in done.sources] == [1, 2]


async def test_json_closing_search_action_falls_back_to_the_evidence(
    scripted_model: Factory,
) -> None:
    search = action(action="search", query="capital of Freedonia")
    server = scripted_model([ScriptedTurn(content=search), ScriptedTurn(content=search)])
    agent = make_agent(server.base_url, AgentConfig(protocol="json", top_k=2, max_steps=1))
    done = finished(await collect(agent.run("Capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.finalized_reason == "max_steps"
    assert done.answer.startswith("I could not finish the research")
    assert "capital of Freedonia" not in done.answer.split("\n")[0]


async def test_tags_protocol_grows_one_prompt(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(
                text="<think>I need the capital.<|begin_search_query|>capital of Freedonia"
                "<|end_search_query|>never seen"
            ),
            ScriptedTurn(
                text="Sylvania City. Its river?<|begin_search_query|>Sylvania City river"
                "<|end_search_query|>"
            ),
            ScriptedTurn(text="So the answer is the Brill.</think>The river Brill [4]."),
        ]
    )
    agent = make_agent(server.base_url, AgentConfig(protocol="tags", top_k=2))
    events = await collect(agent.run(QUESTION, thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    assert done.answer == "The river Brill [4]." and [s.number for s in done.sources] == [4]
    assert done.tool_calls == 2
    bodies = [r.body for r in server.requests]
    assert all(r.endpoint == "/v1/completions" for r in server.requests)
    stops = [END_QUERY, END_TOOL]  # the default toolbox has tools besides search (open, ...)
    assert all(b["stop"] == stops and b["include_stop_str_in_output"] for b in bodies)
    p1, p2, p3 = (b["prompt"] for b in bodies)
    assert QUESTION in p1 and p1.endswith("<|im_start|>assistant\n")
    # Each prompt is the previous prompt + the model's text (cut at the stop) + results.
    assert p2.startswith(p1 + "<think>I need the capital.<|begin_search_query|>")
    assert "never seen" not in p2
    assert p2.endswith(f"{END_RESULT}\n\n") and f"{BEGIN_RESULT}\n[1] Freedonia" in p2
    assert p3.startswith(p2 + "Sylvania City. Its river?")
    assert "[4] Sylvania City" in p3
    reasoning = "".join(e.text for e in events if e.type == "reasoning_delta")
    assert "I need the capital." in reasoning and "So the answer is the Brill." in reasoning


async def test_tags_tool_call_runs_other_tools_and_a_bad_one_is_nudged(
    scripted_model: Factory,
) -> None:
    """Tools besides search are offered with their schemas and called with the tool-call
    tag; a call that is not JSON becomes a nudge the model sees, not a failed run."""
    calc = json.dumps({"name": "calculator", "arguments": {"expression": "6*7"}})
    server = scripted_model(
        [
            ScriptedTurn(text=f"<think>Compute it.{BEGIN_TOOL}{{oops{END_TOOL}"),
            ScriptedTurn(text=f"Again.{BEGIN_TOOL}{calc}{END_TOOL}"),
            ScriptedTurn(text="Got 42.</think>It is 42."),
        ]
    )
    agent = make_agent(server.base_url, AgentConfig(protocol="tags", top_k=2))
    events = await collect(agent.run("What is 6*7?", thread_id="t", run_id="r"))
    await agent.aclose()
    assert finished(events).answer == "It is 42."
    (result,) = [e for e in events if isinstance(e, ToolResultEvent)]
    assert result.name == "calculator" and result.ok and "42" in result.observation
    p1, p2, p3 = (r.body["prompt"] for r in server.requests)
    assert "- calculator: " in p1 and '"expression"' in p1  # offered with its schema
    assert "the tool call is not JSON" in p2  # the nudge
    assert p3.startswith(p2 + f"Again.{BEGIN_TOOL}{calc}{END_TOOL}")
    assert f"{END_TOOL}\n\n{BEGIN_RESULT}\n" in p3


def _assert_prefix_stable(bodies: list[dict]) -> None:
    for before, after in itertools.pairwise(bodies):
        old, new = before["messages"], after["messages"]
        assert len(new) > len(old)
        assert new[: len(old)] == old  # byte-for-byte same messages, only appended to
        assert json.dumps(new[: len(old)]) == json.dumps(old)


async def test_prompt_prefix_is_stable_across_steps(scripted_model: Factory) -> None:
    script = [
        ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
        ScriptedTurn(tool_calls=(call("open", number=1, scope="document"),)),
        ScriptedTurn(content="maybe"),  # answer -> new question below extends the same thread
        ScriptedTurn(tool_calls=(call("search", query="Sylvania City river"),)),
        ScriptedTurn(content="The Brill [4]."),
    ]
    server = scripted_model(script)
    agent = make_agent(server.base_url)
    finished(await collect(agent.run("Capital of Freedonia?", thread_id="t", run_id="r1")))
    finished(await collect(agent.run("And its river?", thread_id="t", run_id="r2")))
    await agent.aclose()
    bodies = [r.body for r in server.requests]
    _assert_prefix_stable(bodies)
    assert [b["tools"] for b in bodies[1:]] == [bodies[0]["tools"]] * 4


async def test_json_protocol_prefix_is_stable(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(content=action(action="search", query="capital of Freedonia")),
            ScriptedTurn(content=action(action="calculator", expression="1 +")),
            ScriptedTurn(content=action(action="answer", answer="Sylvania City [1].")),
        ]
    )
    agent = make_agent(server.base_url, AgentConfig(protocol="json"))
    finished(await collect(agent.run("Capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    _assert_prefix_stable([r.body for r in server.requests])


async def test_long_runs_compact_old_observations(scripted_model: Factory) -> None:
    queries = ["capital of Freedonia", "Sylvania City river", "marmots", "cheese wool"]
    script = [ScriptedTurn(tool_calls=(call("search", query=q),)) for q in queries]
    script.append(ScriptedTurn(content="Brill [4]."))
    server = scripted_model(script)
    config = AgentConfig(top_k=2, context_length=420, context_fill=1.0, max_tokens_per_step=32)
    agent = make_agent(server.base_url, config)
    done = finished(await collect(agent.run("q", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.finalized_reason is None and done.tool_calls == 4
    last = server.requests[-1].body["messages"]
    tool_contents = [m["content"] for m in last if m["role"] == "tool"]
    assert tool_contents[0].startswith("[older observation compacted")
    assert "1, 2" in tool_contents[0]
    assert tool_contents[-1].startswith("[") and "compacted" not in tool_contents[-1]
    # Every request kept prompt + max_tokens inside the context window (by our estimate).
    for r in server.requests:
        prompt = sum(estimate_tokens(m["content"] or "") + 4 for m in r.body["messages"])
        assert prompt + r.body["max_tokens"] <= config.context_length


async def test_the_closing_call_after_a_budget_fits_the_context(scripted_model: Factory) -> None:
    queries = ["capital of Freedonia", "Sylvania City river", "marmots"]
    script = [ScriptedTurn(tool_calls=(call("search", query=q),)) for q in queries]
    script.append(ScriptedTurn(content="Brill [4]."))
    server = scripted_model(script)
    # Small enough that the steps fit but the closing call (plus its instruction) would not.
    config = AgentConfig(top_k=2, context_length=500, max_steps=3, max_tokens_per_step=32)
    agent = make_agent(server.base_url, config)
    done = finished(await collect(agent.run("q", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.finalized_reason == "max_steps" and done.answer == "Brill [4]."
    steps = [r.body["messages"] for r in server.requests[:-1]]
    assert not any("compacted" in (m["content"] or "") for msgs in steps for m in msgs)
    closing = server.requests[-1].body
    tools = [m["content"] for m in closing["messages"] if m["role"] == "tool"]
    assert tools[0].startswith("[older observation compacted")
    prompt = sum(estimate_tokens(m["content"] or "") + 4 for m in closing["messages"])
    assert prompt + closing["max_tokens"] <= config.usable_context


OVERFLOW = (
    "This model's maximum context length is 4096 tokens. However, your prompt contains at "
    "least 4097 input tokens, which exceeds this limit even without any output tokens."
)


async def test_context_overflow_from_the_server_compacts_and_retries(
    scripted_model: Factory,
) -> None:
    queries = ["capital of Freedonia", "Sylvania City river", "marmots"]
    script = [ScriptedTurn(tool_calls=(call("search", query=q),)) for q in queries]
    script.append(ScriptedTurn(status=400, error_message=OVERFLOW))  # our estimate ran short
    script.append(ScriptedTurn(content="Brill [3]."))
    server = scripted_model(script)
    agent = make_agent(server.base_url, AgentConfig(top_k=2))
    done = finished(await collect(agent.run("q", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.answer == "Brill [3]." and done.finalized_reason is None
    rejected, retried = (r.body["messages"] for r in server.requests[-2:])
    assert len(retried) == len(rejected)
    old = [m["content"] for m in retried if m["role"] == "tool"]
    assert old[0].startswith("[older observation compacted")
    assert not [m for m in rejected if (m["content"] or "").startswith("[older observation")]


async def test_other_request_errors_are_not_retried(scripted_model: Factory) -> None:
    server = scripted_model([ScriptedTurn(status=400, error_message="unknown field 'foo'")])
    agent = make_agent(server.base_url, AgentConfig(top_k=2))
    events = await collect(agent.run("q", thread_id="t", run_id="r"))
    await agent.aclose()
    assert isinstance(events[-1], RunError) and "unknown field" in events[-1].message
    assert len(server.requests) == 1
