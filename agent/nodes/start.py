"""start: reset the run-scoped state and add the new question to the thread."""

from __future__ import annotations

from agent.llm.types import Usage
from agent.nodes.common import NodeDeps
from agent.state import AgentState, ChatTurn


def make_start(deps: NodeDeps):
    async def start(state: AgentState) -> AgentState:
        question = state["question"]
        update: AgentState = {
            "step": 0,
            "tool_calls_used": 0,
            "usage": Usage(),
            "steps": [],
            "pending": [],
            "pending_results": [],
            "draft": None,
            "streamed_answer": "",
            "query_cache": {},
            "stop_reason": None,
            "overruns": 0,
            "repeats": 0,
            "result": None,
            "sources": dict(state.get("sources") or {}),
            "exchanges": [
                *state.get("exchanges", []),
                ChatTurn(role="user", content=question, kind="question"),
            ],
        }
        update.update(deps.protocol.begin(state, question))
        return update

    return start
