"""start: take the run's input, reset the run-scoped state and add the question to the thread.

The input is plain JSON on any LangGraph server (`ResearchInput`): a `question`, or
`messages` ending in the human message to answer, and optional `budgets` overrides as a
dict. The run's id and clock come from the run's config when a server passes them, so a
standard server and thinkrag's runner start runs the same way.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

from agent.config import Budgets, RunOptions, resolve_budgets
from agent.errors import AgentUsageError
from agent.nodes.common import NodeDeps
from agent.state import AgentState, ChatTurn, StateUpdate


def message_text(message: AnyMessage) -> str:
    """A message's text (LangChain content may be a list of typed parts)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p if isinstance(p, str) else str(p.get("text", "")) for p in content]
    return "".join(parts)


def pending_question(state: AgentState) -> tuple[str, bool]:
    """The question to answer and whether `messages` already holds it. The `question` slot
    is emptied by every start, so a non-empty one came with this run's input; otherwise
    the question is the last message, when a chat client sent a human message."""
    if state.question.strip():
        return state.question, False
    last = state.messages[-1] if state.messages else None
    if isinstance(last, HumanMessage) and message_text(last).strip():
        return message_text(last), True
    raise AgentUsageError(
        "the input has no question: send {'question': '...'} or {'messages': [...]} ending "
        "in a human message"
    )


def run_budgets(config: Budgets, given: Budgets | dict[str, Any] | None) -> Budgets:
    """The budgets of this run: a plain dict is read as `RunOptions` (clamped to `config`)."""
    if isinstance(given, Budgets):
        return given
    try:
        options = RunOptions.model_validate(given or {})
    except ValidationError as exc:
        raise AgentUsageError(f"bad budgets input: {exc.errors()[0]['msg']} ({exc})") from None
    return resolve_budgets(config, options)


def make_start(deps: NodeDeps):
    async def start(state: AgentState, config: RunnableConfig) -> StateUpdate:
        configurable: dict[str, Any] = dict(config.get("configurable") or {})
        question, in_messages = pending_question(state)
        budgets = run_budgets(deps.config, state.budgets)
        started = time.time()
        deadline = configurable.get("deadline_at")
        run_id = str(configurable.get("run_id") or state.run_id or uuid.uuid4())
        update: StateUpdate = {
            **AgentState.run_reset(),
            "run_id": run_id,
            "question": "",
            "current_question": question,
            "budgets": budgets,
            "started_at": started,
            "deadline_at": float(deadline) if deadline else started + budgets.deadline_seconds,
            "sources": dict(state.sources),
            "exchanges": [
                *state.exchanges,
                ChatTurn(role="user", content=question, kind="question"),
            ],
        }
        if not in_messages:
            update["messages"] = [HumanMessage(content=question, id=f"{run_id}-q")]
        current = state.merged({"current_question": question, "budgets": budgets})
        update.update(deps.protocol.begin(current, question))
        return update

    return start
