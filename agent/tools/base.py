"""The `Tool` port, its argument schemas, and safe execution of one model tool call.

A tool declares a pydantic model for its arguments; from it come the OpenAI tool JSON
(tools protocol) and one branch of the JSON action union (json protocol). The model's
mistakes -- unknown tool, JSON that does not parse, arguments that fail validation, a
tool raising -- come back as observations it can read and recover from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from agent.citations import CitationRegistry
from agent.config import AgentConfig
from agent.context import truncate_to_tokens
from agent.errors import ToolError
from agent.events import Source
from agent.state import ToolCallRecord, ToolFailureKind, ToolResultRecord
from retrieval.types import Passage, Retriever

log = logging.getLogger(__name__)

Citable = Passage | Source  # a search `Hit` is a Passage


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What a tool found. Passages are numbered by the act node in call order (so parallel
    calls number deterministically), then rendered after `text`."""

    text: str = ""
    passages: tuple[Citable, ...] = ()
    scores: tuple[float, ...] = ()
    cached: bool = False
    cache_key: str | None = None  # search: remember the numbers under this query key


@dataclass(slots=True)
class ToolContext:
    """What a tool may touch during one run (mutable run state is owned by the act node)."""

    retriever: Retriever
    registry: CitationRegistry
    config: AgentConfig
    question: str
    top_k: int
    observation_budget: int
    query_cache: dict[str, list[int]] = field(default_factory=dict)


@runtime_checkable
class Tool(Protocol):
    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[BaseModel]]

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolOutput: ...


def _strip_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_titles(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_strip_titles(v) for v in node]
    return node


def parameters_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a tool's arguments, without pydantic's titles."""
    schema = _strip_titles(model.model_json_schema())
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return schema


def openai_tool(tool: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": parameters_schema(tool.args_model),
            "strict": True,
        },
    }


def action_branch(name: str, args_schema: Mapping[str, Any]) -> dict[str, Any]:
    """One branch of the json protocol's action union: `{"action": name, ...args}`."""
    props = {"action": {"type": "string", "enum": [name]}, **args_schema.get("properties", {})}
    required = ["action", *args_schema.get("required", [])]
    return {
        "type": "object",
        "properties": props,
        "required": required,
        "additionalProperties": False,
    }


class ToolBox:
    """The tools available to one agent, by name."""

    def __init__(self, tools: Sequence[Tool]) -> None:
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate tool names {names}; give each tool a unique name")
        self.tools: dict[str, Tool] = {t.name: t for t in tools}
        # Schemas are built once: pydantic schema generation is the costliest part of a step.
        self._schemas = {t.name: parameters_schema(t.args_model) for t in tools}
        self._openai = [openai_tool(t) for t in tools]

    def names(self) -> list[str]:
        return list(self.tools)

    def schema(self, name: str) -> dict[str, Any]:
        return self._schemas[name]

    def openai_tools(self) -> list[dict[str, Any]]:
        return list(self._openai)

    def describe(self) -> str:
        """A plain-text tool list for prompts of protocols without native tools."""
        lines = []
        for t in self.tools.values():
            props = self._schemas[t.name]["properties"]
            args = ", ".join(f"{k}: {v.get('type', 'value')}" for k, v in props.items())
            lines.append(f"- {t.name}({args}): {t.description}")
        return "\n".join(lines)

    async def execute(
        self, call: ToolCallRecord, ctx: ToolContext
    ) -> ToolOutput | ToolResultRecord:
        """Run one call; every failure the model caused becomes a typed `ToolFailure` on
        the result, which the model reads as text; success is a ToolOutput for `finish`."""

        def fail(kind: ToolFailureKind, message: str) -> ToolResultRecord:
            return ToolResultRecord.failed(call, kind, message)

        tool = self.tools.get(call.name)
        if tool is None:
            return fail(
                "unknown_tool",
                f"there is no tool named {call.name!r}. Available tools: "
                f"{', '.join(self.tools)}. Call one of these instead.",
            )
        try:
            raw = json.loads(call.arguments or "{}")
        except json.JSONDecodeError as exc:
            return fail(
                "bad_arguments",
                f"arguments are not valid JSON ({exc.msg}); send a JSON "
                f"object matching {json.dumps(self._schemas[tool.name])}",
            )
        if not isinstance(raw, dict):
            return fail("bad_arguments", "arguments must be a JSON object")
        try:
            args = tool.args_model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors()
            )
            return fail(
                "bad_arguments", f"{problems}. Fix the arguments and call {tool.name} again."
            )
        try:
            out = await tool.run(args, ctx)
        except ToolError as exc:
            return fail("tool_failed", str(exc))
        except Exception as exc:  # a tool bug must not end the run; the model sees it
            log.warning("tool %s failed", call.name, exc_info=True)
            return fail("tool_failed", f"{type(exc).__name__}: {exc}")
        return out


def render_sources(sources: Sequence[Source], budget: int) -> str:
    """Numbered passages, each cut to an equal share of the observation budget."""
    if not sources:
        return "No passages found."
    share = max(24, budget // len(sources) - 8)
    blocks = []
    for s in sources:
        head = f"[{s.number}] {s.title}" + (f" ({s.source})" if s.source else "")
        blocks.append(f"{head}\n{truncate_to_tokens(s.text.strip(), share)}")
    return "\n\n".join(blocks)


def finish(call: ToolCallRecord, out: ToolOutput, ctx: ToolContext) -> ToolResultRecord:
    """Number the passages a tool returned, render them and cut to the observation budget."""
    numbers = tuple(ctx.registry.number_for(p) for p in out.passages)
    if out.cache_key is not None:
        ctx.query_cache[out.cache_key] = list(numbers)
    parts = [out.text] if out.text else []
    if out.passages or not out.text:
        sources = [ctx.registry.sources[n] for n in numbers]
        parts.append(render_sources(sources, ctx.observation_budget))
    return ToolResultRecord(
        call_id=call.id,
        name=call.name,
        arguments=call.arguments,
        observation=truncate_to_tokens("\n\n".join(parts), ctx.observation_budget),
        numbers=numbers,
        scores=out.scores,
        cached=out.cached,
    )
