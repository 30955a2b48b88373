"""`tags` protocol (Search-o1 / Search-R1 style) over `/v1/completions`.

The model writes `<|begin_search_query|>q<|end_search_query|>`; generation stops on the
end tag (kept in the output), we append the results between result tags and continue
the same text. The prompt only ever grows, which vLLM's prefix cache rewards.

Search is the tag such models were trained on; every other tool in the toolbox (open,
calculator, MCP servers' tools) is offered in the system prompt with its JSON schema and
called as `<|begin_tool_call|>{"name": ..., "arguments": {...}}<|end_tool_call|>`, so
a tags model can use the same tools as the other protocols.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

from agent.actions.base import AnswerSink, EmitText, ModelTurn, ProtocolDeps, StepLimits
from agent.context import compact_prompt_text, estimate_tokens
from agent.llm.think import split_think
from agent.llm.types import CompletionResult, Usage
from agent.prompts import fill
from agent.state import AgentState, AnswerDraft, StateUpdate, ToolCallRecord, ToolResultRecord

BEGIN_QUERY = "<|begin_search_query|>"
END_QUERY = "<|end_search_query|>"
BEGIN_RESULT = "<|begin_search_result|>"
END_RESULT = "<|end_search_result|>"
BEGIN_TOOL = "<|begin_tool_call|>"
END_TOOL = "<|end_tool_call|>"


class TagsProtocol:
    def __init__(self, deps: ProtocolDeps) -> None:
        self.deps = deps
        self.config = deps.config
        self.other_tools = [n for n in deps.toolbox.names() if n != "search"]

    def tools_text(self) -> str:
        """The tool-call paragraph of the system prompt ("" when search is the only tool)."""
        if not self.other_tools:
            return ""
        box = self.deps.toolbox
        lines = [
            f"\nOther tools: to call one, write {BEGIN_TOOL}"
            '{"name": "<tool>", "arguments": {...}}'
            f"{END_TOOL} and stop. Its result appears between {BEGIN_RESULT} and "
            f"{END_RESULT}, like a search's. The tools, with their arguments as JSON schema:"
        ]
        for name in self.other_tools:
            schema = box.schema(name)
            args = json.dumps(
                {k: schema.get(k) for k in ("properties", "required") if schema.get(k)},
                ensure_ascii=False,
            )
            lines.append(f"- {name}: {box.tools[name].description} Arguments: {args}")
        return "\n".join(lines)

    def begin(self, state: AgentState, question: str) -> StateUpdate:
        prompts = self.deps.prompts
        text = state.prompt_text
        if not text:
            system = prompts.system(self.tools_text())
            text = fill(prompts.slot("tags_template"), system=system, question=question) + "\n"
        else:
            text += fill(prompts.slot("tags_followup"), question=question) + "\n"
        return {"prompt_text": text}

    async def _complete(
        self, prompt: str, limits: StepLimits, stop: Sequence[str]
    ) -> CompletionResult:
        remaining = max(0.001, limits.deadline_at - time.time())
        async with asyncio.timeout(remaining):
            return await self.deps.model.complete(
                prompt,
                max_tokens=limits.max_tokens,
                stop=stop,
                include_stop_str_in_output=True,
                temperature=self.config.temperature,
                seed=self.config.seed,
            )

    async def step(
        self,
        state: AgentState,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[ModelTurn, StateUpdate]:
        """Buffered (`live` unused): one non-streamed completion whose answer part is
        known only once the text is split."""
        prompt = state.prompt_text
        stops = [END_QUERY, END_TOOL] if self.other_tools else [END_QUERY]
        if not limits.allow_tools:
            stops = []
        result = await self._complete(prompt, limits, stops)
        text = result.text
        usage = result.usage
        update: StateUpdate = {"prompt_text": prompt + text}
        if self.other_tools and (text.endswith(END_TOOL) or result.stop_reason == END_TOOL):
            return self._tool_call(state, text, usage, emit), update
        if text.endswith(END_QUERY) or result.stop_reason == END_QUERY:
            body = text.removesuffix(END_QUERY)
            start = body.rfind(BEGIN_QUERY)
            reasoning = body[:start] if start >= 0 else body
            if reasoning:
                emit(reasoning)
            if start < 0:
                note = f"invalid_action: write {BEGIN_QUERY} before the query"
                return ModelTurn(reasoning, text, usage=usage, note=note), update
            query = body[start + len(BEGIN_QUERY) :].strip()
            call = ToolCallRecord(
                id=f"query-{state.step}",
                name="search",
                arguments=json.dumps({"query": query}, ensure_ascii=False),
            )
            return ModelTurn(reasoning, text, (call,), usage=usage), update
        if result.finish_reason == "length":
            emit(text)
            return ModelTurn(text, "", usage=usage, note="thinking_overrun"), update
        reasoning, answer = split_think(text)
        if not reasoning and BEGIN_RESULT in prompt and not answer:
            answer = text
        if reasoning:
            emit(reasoning)
        answer = answer.strip() or reasoning.strip().split("\n\n")[-1].strip()
        if not answer:
            return ModelTurn(reasoning, text, usage=usage, note="empty"), update
        return ModelTurn(reasoning, answer, answer=AnswerDraft(text=answer), usage=usage), update

    def _tool_call(self, state: AgentState, text: str, usage: Usage, emit: EmitText) -> ModelTurn:
        """A turn that stopped on the tool-call end tag: its JSON call, or why it is none."""
        body = text.removesuffix(END_TOOL)
        start = body.rfind(BEGIN_TOOL)
        reasoning = body[:start] if start >= 0 else body
        if reasoning:
            emit(reasoning)
        if start < 0:
            note = f"invalid_action: write {BEGIN_TOOL} before the tool call"
            return ModelTurn(reasoning, text, usage=usage, note=note)
        try:
            value = json.loads(body[start + len(BEGIN_TOOL) :])
        except json.JSONDecodeError as exc:
            note = f"invalid_action: the tool call is not JSON ({exc.msg})"
            return ModelTurn(reasoning, text, usage=usage, note=note)
        name = value.get("name") if isinstance(value, dict) else None
        args = value.get("arguments", {}) if isinstance(value, dict) else None
        if not isinstance(name, str) or not isinstance(args, dict):
            note = 'invalid_action: a tool call is {"name": "<tool>", "arguments": {...}}'
            return ModelTurn(reasoning, text, usage=usage, note=note)
        arguments = json.dumps(args, ensure_ascii=False)
        call = ToolCallRecord(id=f"tool-{state.step}", name=name, arguments=arguments)
        return ModelTurn(reasoning, text, (call,), usage=usage)

    def record_actions(self, state: AgentState, actions: Sequence[ToolCallRecord]) -> StateUpdate:
        text = state.prompt_text
        for a in actions:
            args = json.loads(a.arguments or "{}")
            if a.name == "search":
                text += f"{BEGIN_QUERY}{args.get('query', '')}{END_QUERY}"
            else:
                call = json.dumps({"name": a.name, "arguments": args}, ensure_ascii=False)
                text += f"{BEGIN_TOOL}{call}{END_TOOL}"
        return {"prompt_text": text}

    def observe(self, state: AgentState, results: Sequence[ToolResultRecord]) -> StateUpdate:
        text = state.prompt_text
        for r in results:
            text += f"\n\n{BEGIN_RESULT}\n{r.observation}\n{END_RESULT}\n\n"
        return {"prompt_text": text}

    def nudge(self, state: AgentState, text: str) -> StateUpdate:
        return {"prompt_text": state.prompt_text + f"\n\n{text}\n\n"}

    def record_answer(self, state: AgentState, answer: str) -> StateUpdate:
        text = state.prompt_text
        if answer.strip() and answer.strip() not in text[-len(answer) - 200 :]:
            text += "\n" + answer
        return {"prompt_text": text}

    async def free_text(
        self,
        state: AgentState,
        instruction: str,
        limits: StepLimits,
        emit: EmitText,
        live: AnswerSink | None = None,
    ) -> tuple[str, Usage]:
        prompt = state.prompt_text + f"\n\n{instruction}\n\n"
        result = await self._complete(prompt, limits, [])
        reasoning, answer = split_think(result.text)
        if reasoning:
            emit(reasoning)
        return answer.strip(), result.usage

    def context_size(self, state: AgentState) -> int:
        return estimate_tokens(state.prompt_text)

    def compact(self, state: AgentState, limit: int) -> StateUpdate | None:
        text, changed = compact_prompt_text(state.prompt_text, limit=limit)
        return {"prompt_text": text} if changed else None
