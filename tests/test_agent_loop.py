"""Deterministic agent trajectories: a scripted model over real HTTP drives the real graph."""

from __future__ import annotations

import json
from collections.abc import Callable

from agent.config import AgentConfig
from agent.events import RunError, RunStarted, ToolCallEvent, ToolResultEvent
from agent.llm.client import OpenAIClient
from agent.llm.policy import RetryPolicy
from agent.runner import ResearchAgent
from retrieval.search.memory import InMemoryRetriever
from retrieval.types import Hit, SearchFilters
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call, collect, corpus_passages, finished, make_agent, retriever

Factory = Callable[..., ScriptedModelServer]
QUESTION = "Which river flows through the capital of Freedonia?"


def chat_requests(server: ScriptedModelServer) -> list[dict]:
    return [r.body for r in server.requests if r.endpoint == "/v1/chat/completions"]


async def test_two_hop_question_is_answered_with_two_searches(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(
                reasoning="First find the capital.",
                tool_calls=(call("search", query="capital of Freedonia"),),
            ),
            ScriptedTurn(
                reasoning="The capital is Sylvania City; now its river.",
                tool_calls=(call("search", query="Sylvania City river"),),
            ),
            ScriptedTurn(reasoning="Enough.", content="It is the river Brill [4], see [1]."),
        ]
    )
    agent = make_agent(server.base_url)
    events = await collect(agent.run(QUESTION, thread_id="t1", run_id="r1"))
    await agent.aclose()
    done = finished(events)
    assert isinstance(events[0], RunStarted)
    assert done.finalized_reason is None
    assert done.tool_calls == 2 and done.steps == 3
    assert done.answer == "It is the river Brill [4], see [1]."
    by_number = {s.number: s for s in done.sources}
    assert set(by_number) == {1, 4}
    assert "river Brill" in by_number[4].text and by_number[4].doc_id == "sylvania-city"
    assert "Its capital is Sylvania City" in by_number[1].text
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [h.number for h in results[0].hits] == [1, 2]
    assert [h.number for h in results[1].hits] == [3, 4]
    assert any(e.type == "reasoning_delta" for e in events)
    assert "".join(e.text for e in events if e.type == "answer_delta") == done.answer
    # The second model call saw the first search's passages as a tool message.
    second = chat_requests(server)[1]["messages"]
    tool_msgs = [m for m in second if m["role"] == "tool"]
    assert len(tool_msgs) == 1 and "[1] Freedonia" in tool_msgs[0]["content"]
    assert done.usage.prompt_tokens > 0 and done.usage.completion_tokens > 0


class CountingRetriever(InMemoryRetriever):
    """The real in-memory retriever, counting searches so the cache can be observed."""

    def __init__(self) -> None:
        super().__init__(corpus_passages())
        self.searches: list[str] = []

    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None) -> list[Hit]:
        self.searches.append(query)
        return super().search(query, k, filters)


async def test_repeated_query_is_served_from_the_run_cache(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(tool_calls=(call("search", query="Capital of  FREEDONIA?"),)),
            ScriptedTurn(content="Sylvania City [1]."),
        ]
    )
    counting = CountingRetriever()
    model = OpenAIClient(server.base_url, "scripted")
    agent = ResearchAgent(model, counting, AgentConfig(top_k=2))
    events = await collect(agent.run("Capital of Freedonia?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [r.cached for r in results] == [False, True]
    assert counting.searches == ["capital of Freedonia"]
    assert results[1].observation.startswith("(cached")
    assert [h.number for h in results[1].hits] == [1, 2]
    third = chat_requests(server)[2]["messages"]
    assert "already searched" in third[-1]["content"]
    assert done.tool_calls == 2


async def test_a_model_looping_on_one_query_is_stopped_and_answers(
    scripted_model: Factory,
) -> None:
    looping = ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),))
    server = scripted_model([looping, looping, looping, ScriptedTurn(content="Sylvania City [1].")])
    agent = make_agent(server.base_url)
    events = await collect(agent.run("Capital of Freedonia?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    # One real search, one cached repeat, then the second repeat ends the search phase.
    assert [e.cached for e in events if isinstance(e, ToolResultEvent)] == [False, True]
    assert done.finalized_reason == "repeated_searches"
    assert done.answer == "Sylvania City [1]." and [s.number for s in done.sources] == [1]
    assert len(chat_requests(server)) == 4  # three search turns and the final answer call


async def test_invalid_arguments_then_corrected(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(("search", '{"q": "capital"}'),)),
            ScriptedTurn(tool_calls=(("search", '{"query": "capital of Freedonia"'),)),
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(content="Sylvania City [1]."),
        ]
    )
    agent = make_agent(server.base_url)
    events = await collect(agent.run("Capital of Freedonia?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [r.ok for r in results] == [False, False, True]
    assert "bad_arguments" in results[0].observation and "query" in results[0].observation
    assert "not valid JSON" in results[1].observation
    assert done.answer == "Sylvania City [1]." and done.finalized_reason is None
    # The model saw its mistake as the tool result of that very call.
    msgs = chat_requests(server)[1]["messages"]
    assert msgs[-1]["role"] == "tool" and "Field required" in msgs[-1]["content"]


async def test_unknown_tool_becomes_an_observation(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("browse", url="x"),)),
            ScriptedTurn(tool_calls=(call("search", query="marmots hibernate"),)),
            ScriptedTurn(content="Half the year [1]."),
        ]
    )
    agent = make_agent(server.base_url)
    events = await collect(agent.run("How long do marmots sleep?", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    first = next(e for e in events if isinstance(e, ToolResultEvent))
    assert not first.ok and "unknown_tool" in first.observation
    assert "search" in first.observation and "calculator" in first.observation
    assert done.sources[0].doc_id == "marmots"


async def test_citation_to_unretrieved_passage_is_removed(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(content="Sylvania City [1][7], founded long ago [9, 2]."),
        ]
    )
    agent = make_agent(server.base_url)
    done = finished(await collect(agent.run("Capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.removed_citations == [7, 9]
    assert done.answer == "Sylvania City [1], founded long ago [2]."
    assert [s.number for s in done.sources] == [1, 2]


async def test_uncited_answer_stays_uncited(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(content="Sylvania City."),
        ]
    )
    agent = make_agent(server.base_url)
    done = finished(await collect(agent.run("Capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.answer == "Sylvania City." and done.sources == [] and done.removed_citations == []


async def test_answer_only_in_reasoning_is_used(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("search", query="capital of Freedonia"),)),
            ScriptedTurn(reasoning="Let me see.\n\nThe capital is Sylvania City [1].", content=""),
        ]
    )
    agent = make_agent(server.base_url)
    done = finished(await collect(agent.run("Capital?", thread_id="t", run_id="r")))
    await agent.aclose()
    assert done.answer == "The capital is Sylvania City [1]."
    assert [s.number for s in done.sources] == [1]


async def test_parallel_calls_number_passages_in_call_order(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(
                tool_calls=(
                    call("search", query="marmots"),
                    call("search", query="river Brill"),
                    call("calculator", expression="2026 - 1712"),
                )
            ),
            ScriptedTurn(content="Founded 314 years ago [3]."),
        ]
    )
    agent = make_agent(server.base_url, AgentConfig(top_k=1, parallel_tool_cap=2))
    events = await collect(agent.run("q", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    results = [e for e in events if isinstance(e, ToolResultEvent)]
    assert [r.name for r in results] == ["search", "search", "calculator"]
    assert [h.number for r in results for h in r.hits] == [1, 2]
    assert results[2].observation == "2026 - 1712 = 314"
    assert done.tool_calls == 3
    msgs = chat_requests(server)[1]["messages"]
    assert [m["role"] for m in msgs[-4:]] == ["assistant", "tool", "tool", "tool"]


async def test_retrieval_first_searches_before_the_model(scripted_model: Factory) -> None:
    server = scripted_model([ScriptedTurn(content="Sylvania City [1].")])
    agent = make_agent(server.base_url, AgentConfig(top_k=2, retrieval_first=True))
    events = await collect(agent.run("capital of Freedonia", thread_id="t", run_id="r"))
    await agent.aclose()
    done = finished(events)
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    assert [json.loads(c.arguments)["query"] for c in calls] == ["capital of Freedonia"]
    first = chat_requests(server)[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant", "tool"]
    assert first[2]["tool_calls"][0]["function"]["name"] == "search"
    assert done.sources[0].doc_id == "freedonia"


async def test_prefetch_names_searches_each_name_of_the_question(scripted_model: Factory) -> None:
    server = scripted_model([ScriptedTurn(content="Sylvania City [1].")])
    config = AgentConfig(top_k=1, retrieval_first=True, prefetch_names=2)
    agent = make_agent(server.base_url, config)
    question = "What is the capital of Freedonia?"
    events = await collect(agent.run(question, thread_id="t", run_id="r"))
    await agent.aclose()
    calls = [e for e in events if isinstance(e, ToolCallEvent)]
    # "What" opens the question; only the name is searched on its own.
    assert [json.loads(c.arguments)["query"] for c in calls] == [question, "Freedonia"]
    first = chat_requests(server)[0]["messages"]
    assert [m["role"] for m in first] == ["system", "user", "assistant", "tool", "tool"]
    assert finished(events).tool_calls == 2


async def test_unreachable_model_is_a_typed_run_error() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    model = OpenAIClient(f"http://127.0.0.1:{port}/v1", "m", retry=RetryPolicy(attempts=1))
    agent = ResearchAgent(model, retriever(), AgentConfig())
    events = await collect(agent.run("q", thread_id="t", run_id="r"))
    await agent.aclose()
    await model.aclose()
    last = events[-1]
    assert isinstance(last, RunError)
    assert last.kind == "model_unreachable" and last.resumable
