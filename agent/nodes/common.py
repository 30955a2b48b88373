"""What the nodes share: their dependencies, budget checks, step limits and event output."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

from agent.actions.base import ActionProtocol, StepLimits
from agent.citations import CitationRegistry
from agent.config import AgentConfig, Budgets
from agent.errors import ModelRequestError
from agent.events import Event, StopReason
from agent.llm.types import ReasoningModel
from agent.prompts import Prompts
from agent.state import AgentState
from agent.tools.base import ToolBox, ToolContext
from agent.tools.journal import ToolJournal
from retrieval.types import Retriever


@dataclass(frozen=True, slots=True)
class NodeDeps:
    model: ReasoningModel
    retriever: Retriever
    config: AgentConfig
    toolbox: ToolBox
    protocol: ActionProtocol
    prompts: Prompts
    journal: ToolJournal | None = None  # tool outcomes by call id (set by the runner)


def emit(event: Event) -> None:
    """Send a typed event on LangGraph's `custom` stream (a no-op outside a graph run)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:
        return
    writer(event)


def thread_of(config: RunnableConfig) -> str:
    return str((config.get("configurable") or {}).get("thread_id", ""))


def deadline_at(config: RunnableConfig) -> float:
    """The run's wall-clock deadline: fixed by the runner when the run starts and passed
    again, unchanged, on every resume."""
    value: Any = (config.get("configurable") or {}).get("deadline_at")
    return float(value) if value is not None else float("inf")


def exhausted(state: AgentState, deadline: float) -> StopReason | None:
    """The budget that stops the run before another model call, if any."""
    b: Budgets = state.budgets
    if state.step >= b.max_steps:
        return "max_steps"
    if state.usage.total_tokens + 16 >= b.max_total_tokens:
        return "max_total_tokens"
    if time.time() >= deadline:
        return "deadline"
    return None


def step_limits(deps: NodeDeps, state: AgentState, deadline: float) -> StepLimits:
    b: Budgets = state.budgets
    remaining = b.max_total_tokens - state.usage.total_tokens
    wanted = b.thinking_tokens_per_step + deps.config.max_tokens_per_step
    # Prompt + max_tokens must fit the model's context or the server rejects the call.
    room = deps.config.usable_context - deps.protocol.context_size(state) - 32
    return StepLimits(
        max_tokens=max(16, min(wanted, remaining, room)),
        thinking_tokens=b.thinking_tokens_per_step,
        allow_tools=state.tool_calls_used < b.max_tool_calls,
        deadline_at=deadline,
    )


def context_overflow(exc: BaseException) -> bool:
    """A 4xx saying the prompt does not fit the model: our tokenizer-free estimate ran short
    for this text (numbers and rare names cost more tokens than their length suggests)."""
    if not isinstance(exc, ModelRequestError):
        return False
    message = exc.body.lower()
    return "context length" in message or "max_tokens must be at least" in message


def tool_context(deps: NodeDeps, state: AgentState, *, widen: bool = False) -> ToolContext:
    budget = deps.config.observation_token_budget * (4 if widen else 1)
    retriever = deps.retriever
    if deps.config.multihop_search:
        from retrieval.search.multihop import MultiHopRetriever

        retriever = MultiHopRetriever(retriever)
    return ToolContext(
        retriever=retriever,
        registry=CitationRegistry(state.sources),
        config=deps.config,
        question=state.current_question,
        top_k=state.budgets.top_k,
        observation_budget=budget,
        query_cache={k: list(v) for k, v in state.query_cache.items()},
    )
