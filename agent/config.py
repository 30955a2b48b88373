"""Typed configuration of the research agent and the per-run budget overrides.

The config holds defaults that double as maxima: a run may ask for smaller budgets
(`RunOptions`), never larger ones, so a server operator's limits always hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from annotated_types import Ge, Gt
from pydantic import BaseModel, ConfigDict, Field, create_model

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


class Budgets(BaseModel):
    """What one run may spend. The one budget type: `AgentConfig` holds the defaults and
    maxima, `RunOptions` lowers some of them for one run, and the graph state keeps the
    budgets a run actually got (`resolve_budgets`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_steps: int = Field(default=8, ge=1, le=200)
    max_tool_calls: int = Field(default=16, ge=0, le=1000)
    max_total_tokens: int = Field(default=60_000, ge=64)
    thinking_tokens_per_step: int = Field(default=2048, ge=16)
    deadline_seconds: float = Field(default=300.0, gt=0)
    top_k: int = Field(default=5, ge=1, le=50)  # passages one search returns

    @property
    def recursion_limit(self) -> int:
        """LangGraph supersteps this run may need: never the thing that stops a run."""
        # reason + act (+ condense) per step, plus start, plan, prefetch, answer/finalize.
        return 3 * self.max_steps + 10


def _overrides_of(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s fields made optional (default None), keeping only their lower bounds: an
    override above the maximum is clamped, one below the floor is refused by name."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        floors = [m for m in info.metadata if isinstance(m, Ge | Gt)]
        annotation: Any = info.annotation
        fields[name] = (Annotated[annotation | None, *floors], Field(default=None))
    return fields


if TYPE_CHECKING:
    _BudgetOverrides = BaseModel
else:
    _BudgetOverrides = create_model("_BudgetOverrides", **_overrides_of(Budgets))


class RunOptions(_BudgetOverrides):
    """Per-run overrides of any `Budgets` fields (None: keep the config's); each is clamped
    to the config's value. Same field names as `Budgets`: on the wire and in stored runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def __init__(self, **overrides: float | None) -> None:
        super().__init__(**overrides)

    def overrides(self) -> dict[str, float]:
        """The budgets this run lowers, by field name."""
        return self.model_dump(exclude_none=True)


def resolve_budgets(config: Budgets, options: RunOptions | None = None) -> Budgets:
    """The budgets of one run: `config`'s, each lowered to the run's override if smaller."""
    base = Budgets.model_validate({name: getattr(config, name) for name in Budgets.model_fields})
    if options is None:
        return base
    lowered = {k: min(v, getattr(base, k)) for k, v in options.overrides().items()}
    return Budgets.model_validate({**base.model_dump(), **lowered})


class AgentConfig(Budgets):
    """Everything the agent needs to know; built by the CLI/service from a model profile.

    Its `Budgets` fields are the defaults of every run and the maxima a run may ask for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # How the model asks for tools.
    protocol: ActionProtocolName = "tools"
    tool_choice: Literal["auto", "required"] = "auto"
    max_tokens_per_step: int = Field(default=1024, ge=16)  # visible tokens of one model call
    # Retrieval and tools.
    parallel_tool_cap: int = Field(default=4, ge=1, le=32)
    # Consecutive steps made only of already-searched queries before the run answers.
    max_repeated_searches: int = Field(default=2, ge=1, le=50)
    enable_fetch_url: bool = False
    fetch_allow_hosts: tuple[str, ...] = ()
    fetch_max_bytes: int = Field(default=1_000_000, ge=1024)
    fetch_timeout_seconds: float = Field(default=10.0, gt=0)
    retrieval_first: bool = False  # search the question itself before the first model call
    multihop_first: bool = False  # ...through retrieval.search.multihop.MultiHopRetriever
    # ...and then up to this many names the question holds, each searched alone.
    prefetch_names: int = Field(default=0, ge=0, le=4)
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
    # Models that write <think> as plain text but do not reliably close it (no think tokens
    # in their vocabulary): each step is a thinking call stopped at `</think>` (at most
    # thinking_tokens_per_step), then the action or answer continues that same text.
    think_first: bool = False
    answer_style: AnswerStyle = "cited"
    # Prompt slots replaced one at a time (see agent/prompts).
    prompts: dict[PromptSlot, str] = Field(default_factory=dict)

    @property
    def usable_context(self) -> int:
        """Tokens (by our estimate) a prompt plus its completion may take."""
        return int(self.context_length * self.context_fill)
