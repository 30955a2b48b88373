"""Transcript handling shared by the two chat protocols (`tools` and `json`).

The transcript only ever grows by appending messages, so step n+1's messages extend
step n's exactly; `compact` is the one rewrite, used when the context is nearly full.

With `think_first`, a step is two calls: the thinking, stopped at `</think>` (the chat
template opens the think block), then the action written as a continuation of that same
assistant text with the block closed by us. The second prompt extends the first, so the
prefix cache makes it cost only the thought's tokens; the thought always ends within its
budget, and a forced tool call or schema applies from the action's first token.
"""

from __future__ import annotations

import re
from dataclasses import replace

from agent.actions.base import (
    AnswerSink,
    EmitText,
    ProtocolDeps,
    StepLimits,
    stream_chat_turn,
)
from agent.context import compact_transcript, transcript_tokens
from agent.llm.types import ChatRequest, Message, Usage
from agent.state import AgentState, ChatTurn, StateUpdate

_CITATIONS = re.compile(r"\[[\d,;\s]*\]")
_WORDS = re.compile(r"\w{2,}")


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

    async def think(
        self, request: ChatRequest, limits: StepLimits, emit: EmitText
    ) -> tuple[ChatRequest, str, Usage]:
        """Run the thinking call for `request`; returns the request that continues it."""
        budget = max(16, min(limits.thinking_tokens, limits.max_tokens))
        thinking = replace(
            request,
            tools=(),
            tool_choice=None,
            response_format=None,
            structured_outputs=None,
            max_tokens=budget,
            extra_body={**request.extra_body, "stop": ["</think>"]},
        )
        # Not cut for thinking by the stream: max_tokens already bounds it.
        wide = replace(limits, thinking_tokens=budget * 4)
        s = await stream_chat_turn(self.deps.model, thinking, wide, emit)
        thought = (s.reasoning + s.content).replace("<think>", "").strip()
        prefill = Message("assistant", f"<think>\n{thought}\n</think>\n\n")
        action = replace(
            request,
            messages=[*request.messages, prefill],
            max_tokens=max(16, limits.max_tokens - s.usage.completion_tokens),
            extra_body={
                **request.extra_body,
                "continue_final_message": True,
                "add_generation_prompt": False,
                "include_reasoning": False,  # the constraint applies from the first token
            },
        )
        return action, thought, s.usage

    async def free_text(
        self,
        state: AgentState,
        instruction: str,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[str, Usage]:
        asked = self.nudge(state, instruction)
        request = self.request(state.merged(asked), limits)
        usage = Usage()
        thought = ""
        if self.config.think_first:
            request, thought, usage = await self.think(request, limits, emit)
            live = None  # the continuation carries no reasoning: it stays buffered
        streamed = await stream_chat_turn(self.deps.model, request, limits, emit, live)
        text = streamed.content.strip()
        if thought and not _WORDS.search(_CITATIONS.sub("", text)):
            # Small models often state the answer while thinking and then write only its
            # citation ("[1]"): the thought is the answer they gave.
            text = f"{thought} {text}".strip()
        return text, usage + streamed.usage

    def context_size(self, state: AgentState) -> int:
        return transcript_tokens(state.transcript)

    def compact(self, state: AgentState, limit: int) -> StateUpdate | None:
        turns, changed = compact_transcript(list(state.transcript), limit=limit)
        return {"transcript": turns} if changed else None
