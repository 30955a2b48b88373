"""Wire rendering for the scripted server: scripted turns as vLLM 0.32 JSON and SSE bytes.

Kept apart from the app so the byte shapes (what a client must parse) read in one place.
"""

from __future__ import annotations

import json
import re
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testing.scripted.script import ScriptedTurn, ScriptHost

_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def rough_tokens(text: str) -> int:
    """About four characters a token: close enough for usage accounting in tests."""
    return (len(text) + 3) // 4


def token_ids(text: str) -> list[int]:
    """Whitespace-ish tokenization with stable ids (crc32), like a toy /tokenize."""
    return [zlib.crc32(t.encode()) % 50_000 for t in _TOKEN_RE.findall(text)]


def prompt_text(body: dict[str, Any]) -> str:
    if "prompt" in body:
        prompt = body["prompt"]
        return prompt if isinstance(prompt, str) else json.dumps(prompt)
    parts: list[str] = []
    for msg in body.get("messages") or []:
        content = msg.get("content")
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)


def chunks(text: str, size: int) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


class Render:
    """Per-request rendering: ids, usage and the turn's wire pieces."""

    def __init__(self, server: ScriptHost, turn: ScriptedTurn, body: dict[str, Any]):
        self.server = server
        self.turn = turn
        self.body = body
        self.created = int(time.time())
        self.model = body.get("model") or server.model
        prompt = prompt_text(body)
        self.prompt_tokens = (
            turn.prompt_tokens if turn.prompt_tokens is not None else rough_tokens(prompt)
        )

    def usage(self, reasoning: str, generated: str) -> dict[str, Any]:
        completion = rough_tokens(reasoning) + rough_tokens(generated)
        self.server.counters.prompt_tokens += self.prompt_tokens
        self.server.counters.generation_tokens += completion
        self.server.counters.cache_hits += self.turn.cached_tokens or 0
        return {
            "prompt_tokens": self.prompt_tokens,
            "total_tokens": self.prompt_tokens + completion,
            "completion_tokens": completion,
            "prompt_tokens_details": (
                {"cached_tokens": self.turn.cached_tokens}
                if self.turn.cached_tokens is not None
                else None
            ),
            "completion_tokens_details": {"reasoning_tokens": rough_tokens(reasoning)},
        }

    def finish_reason(self) -> str:
        if self.turn.finish_reason:
            return self.turn.finish_reason
        return "tool_calls" if self.turn.tool_calls else "stop"

    def tool_call_ids(self) -> list[str]:
        return [f"call_{uuid.uuid4().hex[:24]}" for _ in self.turn.tool_calls]

    def include_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))


def cut_completion(text: str, stop: list[str], include: bool) -> tuple[str, str | None]:
    """Cut `text` at the earliest stop string, like vLLM's stop-string handling."""
    best: tuple[int, str] | None = None
    for s in stop:
        pos = text.find(s) if s else -1
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, s)
    if best is None:
        return text, None
    pos, s = best
    return (text[: pos + len(s)] if include else text[:pos]), s


def completion_outcome(r: Render) -> tuple[str, str | None, str]:
    stop = r.body.get("stop") or []
    stops = [stop] if isinstance(stop, str) else list(stop)
    text, stop_reason = cut_completion(
        r.turn.text, stops, bool(r.body.get("include_stop_str_in_output"))
    )
    finish = "stop" if stop_reason is not None else (r.turn.finish_reason or "stop")
    return text, stop_reason, finish


def chat_body(r: Render) -> dict[str, Any]:
    turn = r.turn
    content = turn.visible_content()
    reasoning = turn.reasoning_on_wire()
    calls = [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
        for cid, (name, args) in zip(r.tool_call_ids(), turn.tool_calls, strict=True)
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content if content or not calls else None,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "tool_calls": calls,
    }
    message[turn.reasoning_field] = reasoning or None
    args_text = "".join(a for _, a in turn.tool_calls)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": r.created,
        "model": r.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": r.finish_reason(),
                "stop_reason": None,
            }
        ],
        "usage": r.usage(reasoning or turn.reasoning, content + args_text),
        "prompt_logprobs": None,
    }


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


def chat_events(r: Render, size: int) -> Iterator[str]:
    turn = r.turn
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    with_usage = r.include_usage()

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if finish is not None:
            choice["stop_reason"] = None
        payload: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": r.created,
            "model": r.model,
            "choices": [choice],
        }
        if with_usage:
            payload["usage"] = None
        return _sse(payload)

    yield chunk({"role": "assistant", "content": ""})
    deltas: list[dict[str, Any]] = []
    reasoning = turn.reasoning_on_wire()
    deltas += [{turn.reasoning_field: piece} for piece in chunks(reasoning, size)]
    content = turn.visible_content()
    deltas += [{"content": piece} for piece in chunks(content, size)]
    for index, (call_id, (name, args)) in enumerate(
        zip(r.tool_call_ids(), turn.tool_calls, strict=True)
    ):
        opening = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        deltas.append({"tool_calls": [opening]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in chunks(args, size)
        ]
    # Like vLLM, the finish_reason rides on the last token's delta.
    last = deltas.pop() if deltas else {"content": ""}
    for delta in deltas:
        yield chunk(delta)
    yield chunk(last, r.finish_reason())
    args_text = "".join(a for _, a in turn.tool_calls)
    usage = r.usage(reasoning or turn.reasoning, content + args_text)
    if with_usage:
        yield _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": r.created,
                "model": r.model,
                "choices": [],
                "usage": usage,
            }
        )
    yield _sse("[DONE]")


def completion_events(r: Render, size: int) -> Iterator[str]:
    cid = f"cmpl-{uuid.uuid4().hex}"
    text, stop_reason, finish = completion_outcome(r)

    def chunk(piece: str, fin: str | None = None, stop: str | None = None) -> str:
        choice = {
            "index": 0,
            "text": piece,
            "logprobs": None,
            "finish_reason": fin,
            "stop_reason": stop,
        }
        return _sse(
            {
                "id": cid,
                "object": "text_completion",
                "created": r.created,
                "model": r.model,
                "choices": [choice],
            }
        )

    for piece in chunks(text, size):
        yield chunk(piece)
    yield chunk("", finish, stop_reason)
    usage = r.usage("", text)
    if r.include_usage():
        yield _sse(
            {
                "id": cid,
                "object": "text_completion",
                "created": r.created,
                "model": r.model,
                "choices": [],
                "usage": usage,
            }
        )
    yield _sse("[DONE]")
