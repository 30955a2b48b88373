"""Split `<think>...</think>` reasoning out of content for servers without a reasoning parser.

Three shapes occur in the wild: a closed block (`<think>r</think>answer`), an unclosed block
(the model ran out of tokens mid-thought: everything after `<think>` is reasoning), and a
missing opening tag (R1 distills whose chat template pre-fills `<think>`: everything before
`</think>` is reasoning). The splitter is incremental and safe for tags split across chunks.

Streaming caveat for the missing-opening-tag shape: text before the `</think>` has already
been emitted as content deltas by the time the tag arrives; `result()` reclassifies it, so
the final `ChatResult` is right while live deltas were provisional. Pass
`starts_in_reasoning=True` when the model is known to pre-fill `<think>` to stream it right.
"""

from __future__ import annotations

from typing import Literal

from agent.llm.types import ChatResult

OPEN = "<think>"
CLOSE = "</think>"
Piece = tuple[Literal["reasoning", "content"], str]


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkSplitter:
    """Feed content chunks; get (kind, text) pieces back; `result()` gives the final split."""

    def __init__(self, *, starts_in_reasoning: bool = False) -> None:
        self._state: Literal["start", "reasoning", "content"] = (
            "reasoning" if starts_in_reasoning else "start"
        )
        self._buf = ""  # held back: a possible partial tag, or leading text not yet decided
        self._opened = starts_in_reasoning
        self._closed = False
        self._strip_lead = False  # drop whitespace right after `</think>`
        self._reasoning: list[str] = []
        self._content: list[str] = []
        self._orphan_close_at: int | None = None  # content length when a bare `</think>` came

    def feed(self, text: str) -> list[Piece]:
        out: list[Piece] = []
        self._buf += text
        while self._buf:
            if self._state == "start":
                stripped = self._buf.lstrip()
                if stripped.startswith(OPEN):
                    self._buf = stripped[len(OPEN) :]
                    self._state, self._opened = "reasoning", True
                    continue
                if stripped == "" or OPEN.startswith(stripped):
                    break  # undecided until more text arrives
                self._state = "content"
                continue
            tag = CLOSE if not self._closed else ""
            idx = self._buf.find(tag) if tag else -1
            if idx >= 0:
                self._emit(out, self._buf[:idx])
                self._buf = self._buf[idx + len(tag) :]
                if self._state == "content":  # `</think>` without an opening tag
                    self._orphan_close_at = sum(len(c) for c in self._content)
                self._closed, self._state, self._strip_lead = True, "content", True
                continue
            keep = _partial_suffix(self._buf, tag) if tag else 0
            self._emit(out, self._buf[: len(self._buf) - keep])
            self._buf = self._buf[len(self._buf) - keep :]
            break
        return out

    def flush(self) -> list[Piece]:
        """End of stream: whatever is held back belongs to the current state."""
        out: list[Piece] = []
        if self._state == "start":
            self._state = "content"
        self._emit(out, self._buf)
        self._buf = ""
        return out

    def _emit(self, out: list[Piece], text: str) -> None:
        if self._state == "content" and self._strip_lead:
            text = text.lstrip()
            if not text:
                return
            self._strip_lead = False
        if not text:
            return
        kind: Literal["reasoning", "content"] = (
            "reasoning" if self._state == "reasoning" else "content"
        )
        (self._reasoning if kind == "reasoning" else self._content).append(text)
        out.append((kind, text))

    def result(self) -> tuple[str, str]:
        """(reasoning, content) after `flush()`, with a bare `</think>` reclassifying the head."""
        reasoning, content = "".join(self._reasoning), "".join(self._content)
        if self._orphan_close_at is not None:
            head, content = content[: self._orphan_close_at], content[self._orphan_close_at :]
            reasoning = reasoning + head
        return reasoning, content


def split_think(text: str, *, starts_in_reasoning: bool = False) -> tuple[str, str]:
    """Split a whole content string into (reasoning, content)."""
    splitter = ThinkSplitter(starts_in_reasoning=starts_in_reasoning)
    splitter.feed(text)
    splitter.flush()
    return splitter.result()


def answer_missing(result: ChatResult) -> bool:
    """True when the model stopped without an answer or a tool call (all of it was thinking)."""
    return not result.content.strip() and not result.tool_calls


def answer_from_reasoning(result: ChatResult) -> str | None:
    """A fallback answer when `answer_missing(result)`: the last paragraph of the reasoning.

    The client never invents content; `ChatResult.content` stays "" so callers can tell. The
    agent decides whether to use this fallback (marked as such) or to re-ask the model with
    thinking disabled. Returns None when there is a real answer or no reasoning either.
    """
    if not answer_missing(result):
        return None
    paragraphs = [p.strip() for p in result.reasoning.split("\n\n") if p.strip()]
    return paragraphs[-1] if paragraphs else None
