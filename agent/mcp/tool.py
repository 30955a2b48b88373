"""`McpTool`: one MCP server tool behind the agent's `Tool` protocol.

Arguments are checked against the server's own JSON schema (so a bad call is the model's
`bad_arguments` observation, not a server round trip), the same schema is what every
action protocol offers the model, and a text result becomes a citable source whose
title and source name the server and tool, numbered like a passage.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from agent.errors import ToolError
from agent.events import Source
from agent.mcp.hub import McpCallError, McpHub, RemoteTool
from agent.tools.base import Tool, ToolContext, ToolOutput


class RemoteArgs(BaseModel):
    """Arguments for a remote tool: any JSON object its schema accepts."""

    model_config = ConfigDict(extra="allow")
    remote_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            errors = list(Draft202012Validator(cls.remote_schema).iter_errors(data))
        except SchemaError:
            return data  # the server's schema is broken: let the server judge the call
        if errors:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(str(p) for p in e.path) or 'arguments'}: {e.message}"
                    for e in errors[:4]
                )
            )
        return data

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        schema = copy.deepcopy(cls.remote_schema)
        schema.setdefault("type", "object")
        return schema


def render_result(result: Any, cap: int) -> tuple[str, bool]:
    """(text, is_error) of a `CallToolResult`; non-text parts are named, not inlined."""
    parts: list[str] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource" and hasattr(block.resource, "text"):
            parts.append(block.resource.text)
        elif kind == "resource_link":
            parts.append(f"[resource link: {block.uri}]")
        else:
            parts.append(f"[{kind or 'unknown'} content omitted]")
    structured = getattr(result, "structured_content", None)
    if not parts and structured is not None:
        parts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(parts).strip()
    if len(text) > cap:
        text = text[:cap] + f"\n[... cut: the result had {len(text)} characters, the cap is {cap}]"
    return text, bool(getattr(result, "is_error", False))


class McpTool:
    """Calls `remote` on its server through the hub; subclassed per tool (names are
    class attributes in the `Tool` protocol)."""

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: ClassVar[type[BaseModel]]
    remote: ClassVar[RemoteTool]

    def __init__(self, hub: McpHub) -> None:
        self.hub = hub

    async def run(self, args: BaseModel, ctx: ToolContext) -> ToolOutput:
        remote = self.remote
        try:
            result = await self.hub.call(remote, args.model_dump())
        except McpCallError as exc:
            raise ToolError(str(exc)) from exc
        text, is_error = render_result(result, remote.server.max_result_chars)
        label = f"{remote.server.name}.{remote.name}"
        if is_error:
            raise ToolError(f"{label} returned an error: {text or 'no details'}")
        if not text:
            return ToolOutput(text=f"{label} returned no content.")
        return ToolOutput(passages=(self._source(label, args, text),))

    def _source(self, label: str, args: BaseModel, text: str) -> Source:
        key = json.dumps([label, args.model_dump(), text], sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).digest()
        pid = -(int.from_bytes(digest[:7], "big") + 1)  # negative: never a corpus passage id
        return Source(
            number=0, passage_id=pid, doc_id=f"mcp:{label}", title=label,
            source=f"mcp://{self.remote.server.name}/{self.remote.name}",
            start=0, end=len(text), text=text,
        )  # fmt: skip


def make_tools(hub: McpHub) -> list[Tool]:
    """One `Tool` per tool the hub's servers offer, named `server__tool`."""
    tools: list[Tool] = []
    for remote in hub.tools:
        name = remote.server.tool_name(remote.name)
        assert name is not None  # the hub offers only nameable tools
        args = type(f"{name}_args", (RemoteArgs,), {"remote_schema": remote.input_schema})
        description = (
            remote.description.strip() or f"{remote.name} of MCP server {remote.server.name}"
        )
        attrs = {
            "name": name,
            "description": f"{description} (MCP server {remote.server.name})",
            "args_model": args,
            "remote": remote,
        }
        tool_cls = type(f"McpTool_{name}", (McpTool,), attrs)
        tools.append(tool_cls(hub))
    return tools
