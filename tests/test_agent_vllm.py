"""The agent against a real vLLM CPU server: the tiny random MoE for the wire protocols,
SmolLM2 for the demo end to end. Quality is not asserted; completing within budget is."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import RunOptions
from agent.events import RunFinished, ToolCallEvent
from agent.llm.client import OpenAIClient
from agent.runner import ResearchAgent
from serving.models.agent_config import agent_config_for
from serving.models.profiles import get_profile
from tests.agent_support import collect, finished, retriever
from tests.fixtures.vllm_server import VLLM_START_TIMEOUT, require_vllm

QUESTION = "Which river flows through the capital of Freedonia?"
MAX_STEPS = 3
BUDGET = RunOptions(max_steps=MAX_STEPS, max_tool_calls=4, deadline_seconds=120)


async def _run_tiny(
    base_url: str, protocol: str, tool_choice: str, *, think_first: bool = False
) -> list:
    profile = get_profile("tiny-moe")
    config = agent_config_for(
        profile, protocol=protocol, tool_choice=tool_choice, top_k=2, think_first=think_first
    )
    model = OpenAIClient(base_url, profile.served_model_name)
    agent = ResearchAgent(model, retriever(), config)
    try:
        return await collect(agent.run(QUESTION, thread_id="t", run_id="r", options=BUDGET))
    finally:
        await agent.aclose()
        await model.aclose()


@pytest.mark.vllm
async def test_tools_protocol_completes_on_vllm(vllm_tiny_moe: str) -> None:
    events = await _run_tiny(vllm_tiny_moe, "tools", "required")
    done = finished(events)
    assert done.steps <= MAX_STEPS and done.tool_calls <= 4
    # Local profiles search the question first; with tool_choice=required every step is a
    # tool call (the `answer` tool ends the run, any other keeps it going until a budget).
    assert [e for e in events if isinstance(e, ToolCallEvent)]
    assert done.finalized_reason in (None, "max_steps", "max_tool_calls")
    assert done.answer and done.usage.prompt_tokens > 0


@pytest.mark.vllm
async def test_think_first_continues_the_thought_on_vllm(vllm_tiny_moe: str) -> None:
    """The local profile's two-call step against real vLLM: a thinking call stopped at
    </think>, then `continue_final_message` with a forced tool call from the first token."""
    events = await _run_tiny(vllm_tiny_moe, "tools", "required", think_first=True)
    done = finished(events)
    assert [e for e in events if isinstance(e, ToolCallEvent)]
    assert done.finalized_reason in (None, "max_steps", "max_tool_calls")
    assert done.answer and done.usage.completion_tokens > 0


@pytest.mark.vllm
async def test_json_protocol_completes_on_vllm(vllm_tiny_moe: str) -> None:
    events = await _run_tiny(vllm_tiny_moe, "json", "auto")
    done = finished(events)
    assert done.steps <= MAX_STEPS
    assert done.answer and done.usage.completion_tokens > 0
    assert all(s.number >= 1 for s in done.sources)


@pytest.fixture(scope="module")
def vllm_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM serving the `tiny` profile (SmolLM2-135M-Instruct) for this module."""
    require_vllm()
    from serving.models.launcher import VLLMServer

    log: Path = tmp_path_factory.mktemp("vllm-local") / "local.log"
    server = VLLMServer(get_profile("tiny"), log_path=log)
    try:
        yield server.start(timeout=VLLM_START_TIMEOUT)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from corpora.paths import demo_corpus_dir
    from retrieval.indexing.job import run_index_job

    index_dir = tmp_path_factory.mktemp("demo") / "index"
    run_index_job([demo_corpus_dir()], index_dir)
    return index_dir


@pytest.mark.vllm
@pytest.mark.slow
async def test_demo_question_end_to_end_with_smollm2(vllm_local: str, demo_index: Path) -> None:
    from retrieval.search.retriever import load_retriever

    profile = get_profile("tiny")
    config = agent_config_for(profile)
    model = OpenAIClient(vllm_local, profile.served_model_name)
    agent = ResearchAgent(model, load_retriever(demo_index), config)
    question = "How many parameters does the base model of DeepSeek-R1 have?"
    options = RunOptions(max_steps=4, deadline_seconds=240)
    try:
        events = await collect(agent.run(question, thread_id="demo", run_id="r", options=options))
    finally:
        await agent.aclose()
        await model.aclose()
    done = finished(events)
    assert isinstance(done, RunFinished) and done.answer.strip()
    assert done.steps <= 4 and done.tool_calls >= 1  # at least the retrieval-first search
    assert all(s.source for s in done.sources)
