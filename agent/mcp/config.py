"""`McpServerConfig`: one MCP server the agent may use, as the settings file lists it.

Kept free of the SDK so `serving.settings` can reference it without importing `mcp`.
Tool names become `<server>__<tool>`: OpenAI tool calling (and vLLM's OpenAI server,
which follows it) allows only `[A-Za-z0-9_-]` up to 64 characters in a function name, so
the `server.tool` form with a dot is not a legal name there.
"""

from __future__ import annotations

import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SEPARATOR = "__"
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class McpServerConfig(BaseModel):
    """A stdio command (`command = ["mcp-server-time"]`) or a streamable HTTP `url`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        ..., pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,23}$", description="Prefix of its tool names."
    )
    command: list[str] | None = Field(None, min_length=1, description="Program and arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment (stdio).")
    cwd: str | None = None
    url: str | None = Field(None, pattern=r"^https?://", description="Streamable HTTP endpoint.")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers (url).")
    tools: list[str] | None = Field(
        None, description="Allow-list of the server's tool names; None offers every tool."
    )
    timeout_seconds: float = Field(30.0, gt=0, le=3600, description="Per call.")
    start_timeout_seconds: float = Field(30.0, gt=0, le=600)
    max_result_chars: int = Field(8000, ge=100, le=1_000_000, description="Longer results are cut.")

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                f"MCP server {self.name!r}: give exactly one of `command` (stdio) or `url` "
                "(streamable HTTP)"
            )
        return self

    def tool_name(self, remote: str) -> str | None:
        """The namespaced agent tool name, or None when it cannot be a legal tool name."""
        name = f"{self.name}{SEPARATOR}{remote}"
        return name if _NAME_RE.match(name) else None

    def allows(self, remote: str) -> bool:
        return self.tools is None or remote in self.tools
