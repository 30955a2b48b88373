"""Typed configuration of the research agent and the per-run budget overrides.

The config holds defaults that double as maxima: a run may ask for smaller budgets
(`RunOptions`), never larger ones, so a server operator's limits always hold.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ActionProtocolName = Literal["tools", "json", "tags"]
# "cited": a concise answer with [n] citations (the default). "short": the answer itself in a
# few words on the first line, then the citations; benchmarks score the first line.
AnswerStyle = Literal["cited", "short"]
PromptSlot = Literal[
    "persona",
    "tool_guidance",
    "answer_format",
    "finalize",
    "condense",
    "plan",
    "tags_template",
    "tags_followup",
]


class AgentConfig(BaseModel):
    """Everything the agent needs to know; built by the CLI/service from a model profile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # How the model asks for tools.
    protocol: ActionProtocolName = "tools"
    tool_choice: Literal["auto", "required"] = "auto"
    # Budgets (defaults and maxima for per-run overrides).
    max_steps: int = Field(default=8, ge=1, le=200)
    max_tool_calls: int = Field(default=16, ge=0, le=1000)
    max_total_tokens: int = Field(default=60_000, ge=64)
    thinking_tokens_per_step: int = Field(default=2048, ge=16)
    max_tokens_per_step: int = Field(default=1024, ge=16)
    deadline_seconds: float = Field(default=300.0, gt=0)
    # Retrieval and tools.
    top_k: int = Field(default=5, ge=1, le=50)
    parallel_tool_cap: int = Field(default=4, ge=1, le=32)
    # Consecutive steps made only of already-searched queries before the run answers.
    max_repeated_searches: int = Field(default=2, ge=1, le=50)
    enable_fetch_url: bool = False
    fetch_allow_hosts: tuple[str, ...] = ()
    fetch_max_bytes: int = Field(default=1_000_000, ge=1024)
    fetch_timeout_seconds: float = Field(default=10.0, gt=0)
    retrieval_first: bool = False  # search the question itself before the first model call
    multihop_first: bool = False  # ...through retrieval.search.multihop.MultiHopRetriever
    # Every `search` call through the multi-hop strategy: each query also brings the
    # passages its top hits name, so a model that searches once still sees the second hop.
    multihop_search: bool = False
    plan: bool = False
    condense: bool = False
    condense_min_tokens: int = Field(default=400, ge=32)
    # Context management.
    observation_token_budget: int = Field(default=700, ge=32)
    context_length: int = Field(default=8192, ge=256)
    # Share of the context our token estimate may fill: the estimate is tokenizer-free, and
    # chat templates and tool schemas add tokens it does not see.
    context_fill: float = Field(default=0.85, gt=0.2, le=1.0)
    # Sampling and wire details.
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    send_thinking_budget: bool = False  # pass `thinking_token_budget` to servers that accept it
    chat_template_kwargs: dict[str, object] | None = None
    finalize_with_model: bool = True
    answer_style: AnswerStyle = "cited"
    # Prompt slots replaced one at a time (see agent/prompts).
    prompts: dict[PromptSlot, str] = Field(default_factory=dict)

    @property
    def usable_context(self) -> int:
        """Tokens (by our estimate) a prompt plus its completion may take."""
        return int(self.context_length * self.context_fill)


class RunOptions(BaseModel):
    """Per-run budget overrides; every field is clamped to the config's value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_total_tokens: int | None = Field(default=None, ge=1)
    thinking_tokens_per_step: int | None = Field(default=None, ge=1)
    deadline_seconds: float | None = Field(default=None, gt=0)
    top_k: int | None = Field(default=None, ge=1)


class Budgets(BaseModel):
    """The budgets one run actually gets (stored in the graph state)."""

    model_config = ConfigDict(frozen=True)

    max_steps: int
    max_tool_calls: int
    max_total_tokens: int
    thinking_tokens_per_step: int
    deadline_seconds: float
    top_k: int

    @property
    def recursion_limit(self) -> int:
        """LangGraph supersteps this run may need: never the thing that stops a run."""
        # reason + act (+ condense) per step, plus start, plan, prefetch, answer/finalize.
        return 3 * self.max_steps + 10


def resolve_budgets(config: AgentConfig, options: RunOptions | None = None) -> Budgets:
    """Apply `options` on top of `config`, clamping each override to the config maximum."""
    o = options or RunOptions()

    def pick(override: float | None, limit: float) -> float:
        return limit if override is None else min(override, limit)

    return Budgets(
        max_steps=int(pick(o.max_steps, config.max_steps)),
        max_tool_calls=int(pick(o.max_tool_calls, config.max_tool_calls)),
        max_total_tokens=int(pick(o.max_total_tokens, config.max_total_tokens)),
        thinking_tokens_per_step=int(
            pick(o.thinking_tokens_per_step, config.thinking_tokens_per_step)
        ),
        deadline_seconds=float(pick(o.deadline_seconds, config.deadline_seconds)),
        top_k=int(pick(o.top_k, config.top_k)),
    )
