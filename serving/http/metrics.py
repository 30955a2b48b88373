"""Prometheus metrics of one app instance (its own registry: no process-wide globals)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from agent.events import Event, RunFinished, ToolCallEvent, ToolResultEvent

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


@dataclass
class _RunTiming:
    step: int = -1
    step_started: float = field(default_factory=time.monotonic)
    tool_started: dict[str, tuple[str, float]] = field(default_factory=dict)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "thinkrag_runs", "Runs that ended, by final status", ["status"], registry=r
        )
        self.runs_started = Counter("thinkrag_runs_started", "Run attempts started", registry=r)
        self.active = Gauge("thinkrag_runs_active", "Runs executing now", registry=r)
        self.queued = Gauge("thinkrag_queue_depth", "Runs waiting for a slot", registry=r)
        # Replicas: what this one holds, and the queue they all take from (the store's).
        self.leases = Gauge(
            "thinkrag_leases_held", "Runs this replica holds a lease on", registry=r
        )
        self.store_queue = Gauge(
            "thinkrag_store_queue_depth", "Unfinished runs no replica holds yet", registry=r
        )
        self.replica = Info("thinkrag_replica", "This replica's name and store", registry=r)
        self.steps = Histogram(
            "thinkrag_step_seconds", "Wall time of one agent step", buckets=_LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.tools = Histogram(
            "thinkrag_tool_seconds", "Wall time of one tool call", ["tool"],
            buckets=_LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter("thinkrag_tokens", "Model tokens used by runs", ["kind"], registry=r)
        self.events = Counter("thinkrag_events", "Run events persisted and streamed", registry=r)
        self.rejected = Counter(
            "thinkrag_requests_rejected", "Requests refused by protection", ["reason"], registry=r
        )
        self._timing: dict[str, _RunTiming] = {}

    def observe(self, event: Event) -> None:
        self.events.inc()
        timing = self._timing.setdefault(event.run_id, _RunTiming())
        now = time.monotonic()
        if event.step != timing.step:
            if timing.step >= 0:
                self.steps.observe(now - timing.step_started)
            timing.step, timing.step_started = event.step, now
        if isinstance(event, ToolCallEvent):
            timing.tool_started[event.call_id] = (event.name, now)
        elif isinstance(event, ToolResultEvent):
            started = timing.tool_started.pop(event.call_id, None)
            if started is not None:
                self.tools.labels(tool=started[0]).observe(now - started[1])
        elif isinstance(event, RunFinished):
            self.tokens.labels(kind="prompt").inc(event.usage.prompt_tokens)
            self.tokens.labels(kind="completion").inc(event.usage.completion_tokens)
            self.tokens.labels(kind="reasoning").inc(event.usage.reasoning_tokens)
            self.tokens.labels(kind="cached").inc(event.usage.cached_tokens)

    def run_ended(self, run_id: str, status: str) -> None:
        self._timing.pop(run_id, None)
        self.runs.labels(status=status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
