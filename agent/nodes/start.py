"""start: reset the run-scoped state and add the new question to the thread."""

from __future__ import annotations

from agent.nodes.common import NodeDeps
from agent.state import AgentState, ChatTurn, StateUpdate


def make_start(deps: NodeDeps):
    async def start(state: AgentState) -> StateUpdate:
        question = state.question
        update: StateUpdate = {
            **AgentState.run_reset(),
            "sources": dict(state.sources),
            "exchanges": [
                *state.exchanges,
                ChatTurn(role="user", content=question, kind="question"),
            ],
        }
        update.update(deps.protocol.begin(state, question))
        return update

    return start
