"""plan (optional): ask the model to split the question into sub-questions, and add
them to the transcript as a note the following steps can follow."""

from __future__ import annotations

from langchain_core.runnables import RunnableConfig

from agent.events import ReasoningDelta
from agent.nodes.common import NodeDeps, deadline_at, emit, step_limits
from agent.prompts import fill
from agent.state import AgentState, StateUpdate


def make_plan(deps: NodeDeps):
    async def plan(state: AgentState, config: RunnableConfig) -> StateUpdate:
        limits = step_limits(deps, state, deadline_at(config))
        instruction = fill(deps.prompts.slot("plan"), question=state.current_question)
        run_id = state.run_id

        def on_reasoning(text: str) -> None:
            emit(ReasoningDelta(run_id=run_id, step=0, text=text))

        text, usage = await deps.protocol.free_text(state, instruction, limits, on_reasoning)
        lines = [ln.strip("-* ").strip() for ln in text.splitlines() if ln.strip()][:3]
        update: StateUpdate = {"usage": state.usage + usage}
        if lines:
            note = "Plan: answer these in turn.\n" + "\n".join(f"- {ln}" for ln in lines)
            update.update(deps.protocol.nudge(state, note))
        return update

    return plan
