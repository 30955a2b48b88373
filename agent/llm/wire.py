"""OpenAI wire shapes <-> our dataclasses: request bodies, usage, tool-call assembly.

Deliberate policy for fields: we send only what a request sets (vLLM rejects some unknown
combinations), read reasoning from `reasoning` or the legacy `reasoning_content`, and ignore
unknown response fields. The removed `guided_*` fields are refused outright because vLLM
accepts them silently and then does not constrain the output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ModelProtocolError, ModelUsageError
from agent.llm.types import ChatRequest, FinishReason, Message, ToolCall, Usage

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "abort": "cancelled",
    "cancelled": "cancelled",
    "error": "error",
}


def message_to_wire(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": msg.role}
    if msg.tool_calls:
        out["content"] = msg.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in msg.tool_calls
        ]
    else:
        out["content"] = msg.content
    if msg.reasoning is not None:
        out["reasoning"] = msg.reasoning
    if msg.tool_call_id is not None:
        out["tool_call_id"] = msg.tool_call_id
    if msg.name is not None:
        out["name"] = msg.name
    return out


def _refuse_guided(extra: Mapping[str, Any]) -> None:
    guided = sorted(k for k in extra if k.startswith("guided_"))
    if guided:
        raise ModelUsageError(
            f"request sets {', '.join(guided)}: vLLM removed the guided_* fields and now ignores "
            "them silently (the output is NOT constrained); use ChatRequest.structured_outputs "
            "(e.g. {'json': schema}) or response_format={'type': 'json_schema', ...} instead"
        )


def chat_body(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_to_wire(m) for m in req.messages],
        "max_tokens": req.max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    optional: dict[str, Any] = {
        "temperature": req.temperature,
        "top_p": req.top_p,
        "seed": req.seed,
        "tool_choice": req.tool_choice,
        "response_format": dict(req.response_format) if req.response_format else None,
        "structured_outputs": dict(req.structured_outputs) if req.structured_outputs else None,
        "chat_template_kwargs": (
            dict(req.chat_template_kwargs) if req.chat_template_kwargs else None
        ),
        # vLLM 0.32 request field; the server forces `</think>` when the budget is spent.
        "thinking_token_budget": req.thinking_token_budget,
    }
    if req.tools:
        body["tools"] = [dict(t) for t in req.tools]
    body.update({k: v for k, v in optional.items() if v is not None})
    _refuse_guided(req.extra_body)
    body.update(req.extra_body)
    return body


def completion_body(
    model: str,
    prompt: str,
    *,
    max_tokens: int,
    stop: Sequence[str],
    include_stop_str_in_output: bool,
    temperature: float | None,
    seed: int | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": prompt, "max_tokens": max_tokens}
    if stop:
        body["stop"] = list(stop)
        body["include_stop_str_in_output"] = include_stop_str_in_output
    if temperature is not None:
        body["temperature"] = temperature
    if seed is not None:
        body["seed"] = seed
    return body


def finish_reason(raw: object, has_tool_calls: bool) -> FinishReason:
    """Normalise; a response that carries tool calls is reported as `tool_calls` (vLLM says
    `stop` for a named tool_choice)."""
    if has_tool_calls and raw in (None, "stop", "tool_calls"):
        return "tool_calls"
    if raw is None:
        return "stop"
    return _FINISH.get(str(raw), "error")


def parse_usage(raw: object) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
    )


def reasoning_of(obj: Mapping[str, Any]) -> str | None:
    """`reasoning` (vLLM >= 0.10) or the legacy `reasoning_content`; None when neither."""
    value = obj.get("reasoning")
    if value is None:
        value = obj.get("reasoning_content")
    return value if isinstance(value, str) else None


def first_choice(payload: object) -> dict[str, Any] | None:
    if not isinstance(payload, dict):
        raise ModelProtocolError(
            f"expected a JSON object from the model server, got {type(payload).__name__}; "
            "check that base_url points at an OpenAI-compatible /v1 endpoint"
        )
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise ModelProtocolError(
            "response has no `choices` list; check that base_url points at an "
            "OpenAI-compatible /v1 endpoint (vLLM: http://HOST:PORT/v1)"
        )
    return choices[0] if choices else None


def tool_calls_from_message(raw: object) -> tuple[ToolCall, ...]:
    calls: list[ToolCall] = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        fn = item.get("function") or {}
        calls.append(
            ToolCall(
                id=item.get("id") or f"call_{i}",
                name=fn.get("name") or "",
                arguments=fn.get("arguments") or "",
            )
        )
    return tuple(calls)


@dataclass(slots=True)
class _Growing:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Grows tool calls from streamed deltas keyed by `index` (id and name on the first piece)."""

    def __init__(self) -> None:
        self._calls: dict[int, _Growing] = {}

    def add(self, piece: Mapping[str, Any]) -> tuple[int, str]:
        """Take one delta piece; return (index, argument fragment)."""
        index = piece.get("index")
        if not isinstance(index, int):
            index = len(self._calls) if piece.get("id") else max(self._calls, default=0)
        call = self._calls.setdefault(index, _Growing())
        if piece.get("id"):
            call.id = piece["id"]
        fn = piece.get("function") or {}
        if fn.get("name"):
            call.name += fn["name"]
        fragment = fn.get("arguments") or ""
        if fragment:
            call.arguments.append(fragment)
        return index, fragment

    def result(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=c.id or f"call_{i}", name=c.name, arguments="".join(c.arguments))
            for i, c in sorted(self._calls.items())
        )
