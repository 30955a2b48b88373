"""The thin seam between the service and the research agent.

The run manager depends on this Protocol, not on `agent.runner`, so tests of the service
machinery and the real agent share one contract. `ResearchAgent` satisfies it as is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from agent.config import RunOptions
from agent.events import Event


class ResearchEngine(Protocol):
    def run(
        self,
        question: str,
        *,
        thread_id: str,
        run_id: str,
        options: RunOptions | None = None,
        graph_modes: Sequence[str] = (),
    ) -> AsyncIterator[Event]: ...

    def resume(
        self, *, thread_id: str, run_id: str, graph_modes: Sequence[str] = ()
    ) -> AsyncIterator[Event]: ...

    async def forget_thread(self, thread_id: str) -> None:
        """Drop the thread's checkpoints (it was deleted)."""
        ...

    async def aclose(self) -> None: ...


async def warm_up(engine: ResearchEngine) -> None:
    """Open the agent's checkpoint store once, before runs start concurrently.

    `ResearchAgent` opens its checkpointer lazily on first use; hundreds of runs
    recovered or submitted at once would each open their own SQLite connection and
    then fail with "database is locked". Asking for any thread's history opens it once.
    """
    history = getattr(engine, "thread_history", None)
    if history is not None:
        await history("__warm_up__")


def compose_question(turns: Sequence[tuple[str, str]]) -> str:
    """Fold a chat transcript into one question for a fresh run.

    The agent takes a single question per run; when a client sends earlier turns (OpenAI
    style, stateless), they travel as quoted context ahead of the last user message.
    """
    if not turns:
        return ""
    *earlier, (_, last) = turns
    context = [f"{role}: {text}" for role, text in earlier if text.strip() and role != "system"]
    if not context:
        return last
    return "Conversation so far:\n" + "\n".join(context) + f"\n\nCurrent question: {last}"
