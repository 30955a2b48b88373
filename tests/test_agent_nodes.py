"""Optional nodes (plan, condense) and prompt slots."""

from __future__ import annotations

from collections.abc import Callable

from agent.config import AgentConfig
from agent.events import ToolResultEvent
from agent.llm.client import OpenAIClient
from agent.runner import ResearchAgent
from retrieval.search.memory import InMemoryRetriever
from retrieval.types import Passage
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
from tests.agent_support import call, collect, corpus_passages, finished, make_agent

Factory = Callable[..., ScriptedModelServer]


async def test_prompt_slots_override_one_at_a_time(scripted_model: Factory) -> None:
    server = scripted_model([ScriptedTurn(content="Hello.")])
    config = AgentConfig(prompts={"persona": "You are Ada, a terse archivist."})
    agent = make_agent(server.base_url, config)
    finished(await collect(agent.run("hi", thread_id="t", run_id="r")))
    await agent.aclose()
    system = server.requests[0].body["messages"][0]["content"]
    assert system.startswith("You are Ada, a terse archivist.")
    assert "careful research assistant" not in system
    assert "square brackets" in system  # answer_format slot kept its packaged text


async def test_plan_adds_sub_questions_before_reasoning(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(content="- What is the capital of Freedonia?\n- Which river is there?"),
            ScriptedTurn(content="The Brill."),
        ]
    )
    agent = make_agent(server.base_url, AgentConfig(plan=True))
    done = finished(await collect(agent.run("River of the capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.answer == "The Brill."
    planned = server.requests[0].body["messages"][-1]["content"]
    assert "sub-questions" in planned and "River of the capital?" in planned
    reasoned = server.requests[1].body["messages"]
    assert reasoned[-1]["content"].startswith("Plan: answer these in turn.")
    assert "- Which river is there?" in reasoned[-1]["content"]


async def test_condense_summarises_long_documents(scripted_model: Factory) -> None:
    def script(req: ScriptRequest) -> ScriptedTurn:
        messages = req.body["messages"]
        if len(messages) == 1:  # the condense side call: a fresh, tool-free context
            return ScriptedTurn(content="The chronicle says the Brill floods [1].")
        if not any(m["role"] == "tool" for m in messages):
            return ScriptedTurn(tool_calls=(call("search", query="long chronicle"),))
        return ScriptedTurn(content="It floods [1].")

    chronicle = Passage(
        900, "annals", 0, "Annals of Sylvania", "Long chronicle text. " * 80, "annals.md", 0, 1680
    )
    server = scripted_model(script)
    agent = ResearchAgent(
        OpenAIClient(server.base_url, "scripted"),
        InMemoryRetriever([*corpus_passages(), chronicle]),
        AgentConfig(top_k=1, condense=True, condense_min_tokens=200),
    )
    events = await collect(agent.run("Does the Brill flood?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    condense_calls = [r for r in server.requests if len(r.body["messages"]) == 1]
    assert len(condense_calls) == 1
    prompt = condense_calls[0].body["messages"][0]["content"]
    assert "Does the Brill flood?" in prompt and "Long chronicle text." in prompt
    final = server.requests[-1].body["messages"]
    assert final[-1]["role"] == "tool"
    assert final[-1]["content"] == (
        "(condensed from a long document)\nThe chronicle says the Brill floods [1]."
    )
    raw = next(e for e in events if isinstance(e, ToolResultEvent))
    assert raw.observation.count("Long chronicle text.") > 50  # the event keeps the raw text
    assert done.answer == "It floods [1]." and done.sources[0].doc_id == "annals"
    assert done.usage.completion_tokens > 0
