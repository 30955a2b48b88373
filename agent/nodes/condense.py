"""condense (optional; Search-o1's reason-in-documents): long retrieved documents are
summarised into the facts the question needs before the reasoning model reads them,
so the main chain of thought stays short."""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig

from agent.actions.base import stream_chat_turn
from agent.context import estimate_tokens, truncate_to_tokens
from agent.errors import ModelError
from agent.llm.types import ChatRequest, Message
from agent.nodes.common import NodeDeps, deadline_at, step_limits
from agent.prompts import fill
from agent.state import AgentState, StateUpdate, ToolResultRecord


def make_condense(deps: NodeDeps):
    async def condense(state: AgentState, config: RunnableConfig) -> StateUpdate:
        limits = step_limits(deps, state, deadline_at(config))
        budget = deps.config.observation_token_budget
        usage = state.usage
        fitted: list[ToolResultRecord] = []
        for r in state.pending_results:
            text = r.observation
            if r.ok and estimate_tokens(text) > deps.config.condense_min_tokens:
                prompt = fill(
                    deps.prompts.slot("condense"), question=state.current_question, document=text
                )
                # A side call with a fresh, tool-free context: the summary is what matters.
                request = ChatRequest(
                    messages=[Message(role="user", content=prompt)],
                    max_tokens=limits.max_tokens,
                    temperature=deps.config.temperature,
                    chat_template_kwargs=deps.config.chat_template_kwargs,
                )
                try:
                    s = await stream_chat_turn(deps.model, request, limits, lambda _t: None)
                    usage = usage + s.usage
                    if s.content.strip():
                        text = f"(condensed from a long document)\n{s.content.strip()}"
                except (ModelError, TimeoutError):
                    pass  # keep the raw text, cut to the budget below
            fitted.append(r.model_copy(update={"observation": truncate_to_tokens(text, budget)}))
        update: StateUpdate = {"usage": usage, "pending_results": []}
        update.update(deps.protocol.observe(state, fitted))
        return update

    return condense
