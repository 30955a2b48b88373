"""Timeouts per phase and the retry policy of the model client.

One number cannot describe an LLM call: connecting should take milliseconds, the first
token may wait behind a long prefill, a healthy stream never goes quiet for long, and the
whole call needs a ceiling. Retries back off with full jitter so that many agents hitting
one overloaded vLLM server do not retry in lockstep.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds per phase.

    connect: TCP connect (and waiting for a pooled connection).
    first_byte: streaming only, request sent -> first SSE event (covers queueing + prefill).
        Non-streaming responses arrive only after the whole generation, so they are bounded
        by `total` instead.
    between_chunks: streaming only, longest silence between two SSE events.
    total: the whole call, retries and back-off sleeps included.
    """

    connect: float = 5.0
    first_byte: float = 120.0
    between_chunks: float = 60.0
    total: float = 900.0

    def __post_init__(self) -> None:
        for name in ("connect", "first_byte", "between_chunks", "total"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Timeouts.{name} must be > 0 seconds, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries in all (1 = no retry); sleeps drawn from [0, min(cap, base * 2**n)].

    Retried: connection failures, 429 (honouring Retry-After) and 5xx. Never retried: other
    4xx, timeouts after the request was sent (the server may still be working on it), and
    anything once a stream has yielded its first piece.
    """

    attempts: int = 3
    base: float = 0.25
    cap: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("RetryPolicy.base and .cap must be >= 0 seconds")

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Sleep before retry `retry_number` (0 for the first retry)."""
        ceiling = min(self.cap, self.base * (2**retry_number))
        return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
