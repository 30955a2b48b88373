"""Context management: token estimates, per-observation truncation and compaction.

The transcript is append-only so each step's prompt is a byte-exact prefix of the next
(vLLM's prefix cache then serves the old part). Compaction is the one deliberate
exception: when the prompt nears the context length, older observations are replaced
by a one-line stub so the run goes on instead of failing with a context overflow.
"""

from __future__ import annotations

import re

from agent.state import ChatTurn

_TRUNCATION_NOTE = "\n[... truncated to fit the observation budget ...]"
_COMPACTED = "[older observation compacted to save context; cited numbers: {numbers}]"
_NUMBER_RE = re.compile(r"^\[(\d+)\]", re.MULTILINE)
_RESULT_BLOCK_RE = re.compile(
    r"(<\|begin_search_result\|>)(.*?)(<\|end_search_result\|>)", re.DOTALL
)


def estimate_tokens(text: str) -> int:
    """Cheap, tokenizer-free estimate: ~4 ASCII chars a token, one token per other char.

    It over-counts CJK slightly, which is the safe side for budgets.
    """
    if not text:
        return 0
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return (ascii_chars + 3) // 4 + (len(text) - ascii_chars)


def truncate_to_tokens(text: str, budget: int) -> str:
    """Cut `text` to about `budget` tokens on a line or word boundary, with a visible note."""
    if estimate_tokens(text) <= budget:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix within budget
        mid = (lo + hi + 1) // 2
        if estimate_tokens(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    boundary = max(cut.rfind("\n"), cut.rfind(" "))
    if boundary > lo // 2:
        cut = cut[:boundary]
    return cut.rstrip() + _TRUNCATION_NOTE


def transcript_tokens(turns: list[ChatTurn]) -> int:
    # ~4 tokens of chat-template framing per message.
    return sum(estimate_tokens(t.content) + 4 for t in turns)


def compact_transcript(
    turns: list[ChatTurn], *, limit: int, keep_recent: int = 2
) -> tuple[list[ChatTurn], bool]:
    """Replace the oldest observations by stubs until the transcript fits `limit` tokens.

    The newest `keep_recent` observations are kept while that is enough; if not, they
    are compacted too (newest last). Returns the new list and whether anything changed.
    """
    out = list(turns)
    changed = False
    if transcript_tokens(out) <= limit:
        return out, False
    observation_idx = [i for i, t in enumerate(turns) if t.kind == "observation"]
    older = observation_idx[: max(0, len(observation_idx) - keep_recent)]
    recent = observation_idx[len(older) :]
    for i in [*older, *recent]:
        turn = out[i]
        numbers = ", ".join(_NUMBER_RE.findall(turn.content)) or "none"
        stub = _COMPACTED.format(numbers=numbers)
        if len(stub) < len(turn.content):
            out[i] = turn.model_copy(update={"content": stub})
            changed = True
        if transcript_tokens(out) <= limit:
            break
    return out, changed


def compact_prompt_text(text: str, *, limit: int, keep_recent: int = 2) -> tuple[str, bool]:
    """The tags protocol's equivalent: shorten the oldest search-result blocks."""
    if estimate_tokens(text) <= limit:
        return text, False
    blocks = list(_RESULT_BLOCK_RE.finditer(text))
    targets = blocks[: max(0, len(blocks) - keep_recent)]
    if not targets:
        return text, False
    pieces: list[str] = []
    last = 0
    for m in targets:
        numbers = ", ".join(_NUMBER_RE.findall(m.group(2).strip())) or "none"
        pieces.append(text[last : m.start(2)])
        pieces.append("\n" + _COMPACTED.format(numbers=numbers) + "\n")
        last = m.end(2)
    pieces.append(text[last:])
    return "".join(pieces), True
