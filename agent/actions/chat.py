"""Transcript handling shared by the two chat protocols (`tools` and `json`).

The transcript only ever grows by appending messages, so step n+1's messages extend
step n's exactly; `compact` is the one rewrite, used when the context is nearly full.
"""

from __future__ import annotations

from agent.actions.base import (
    AnswerSink,
    EmitText,
    ProtocolDeps,
    StepLimits,
    stream_chat_turn,
)
from agent.context import compact_transcript, transcript_tokens
from agent.llm.types import ChatRequest, Usage
from agent.state import AgentState, ChatTurn, StateUpdate


class ChatTranscript:
    def __init__(self, deps: ProtocolDeps) -> None:
        self.deps = deps
        self.config = deps.config

    def system_prompt(self) -> str:
        return self.deps.prompts.system(self.deps.toolbox.describe())

    def begin(self, state: AgentState, question: str) -> StateUpdate:
        turns = list(state.transcript)
        if not turns:
            turns.append(ChatTurn(role="system", content=self.system_prompt(), kind="prompt"))
        turns.append(ChatTurn(role="user", content=question, kind="question"))
        return {"transcript": turns}

    def nudge(self, state: AgentState, text: str) -> StateUpdate:
        turns = [*state.transcript, ChatTurn(role="user", content=text, kind="note")]
        return {"transcript": turns}

    def record_answer(self, state: AgentState, answer: str) -> StateUpdate:
        turn = ChatTurn(role="assistant", content=answer, kind="answer")
        return {"transcript": [*state.transcript, turn]}

    def request(self, state: AgentState, limits: StepLimits, **extra: object) -> ChatRequest:
        cfg = self.config
        return ChatRequest(
            messages=[t.to_message() for t in state.transcript],
            max_tokens=limits.max_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            seed=cfg.seed,
            chat_template_kwargs=cfg.chat_template_kwargs,
            thinking_token_budget=limits.thinking_tokens if cfg.send_thinking_budget else None,
            **extra,  # type: ignore[arg-type]
        )

    async def free_text(
        self,
        state: AgentState,
        instruction: str,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[str, Usage]:
        asked = self.nudge(state, instruction)
        streamed = await stream_chat_turn(
            self.deps.model, self.request(state.merged(asked), limits), limits, emit, live
        )
        text = streamed.content.strip()
        return text, streamed.usage

    def context_size(self, state: AgentState) -> int:
        return transcript_tokens(state.transcript)

    def compact(self, state: AgentState, limit: int) -> StateUpdate | None:
        turns, changed = compact_transcript(list(state.transcript), limit=limit)
        return {"transcript": turns} if changed else None
