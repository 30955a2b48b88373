"""Action protocols: how a model asks for a tool (native tool calls, JSON actions, tags).

All three drive the same graph, tools and events; `select_protocol` picks one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.actions.base import ActionProtocol, ProtocolDeps


def select_protocol(deps: ProtocolDeps) -> ActionProtocol:
    from agent.actions.json_actions import JsonActionProtocol
    from agent.actions.tags import TagsProtocol
    from agent.actions.tools import ToolsProtocol

    protocols: dict[str, Callable[[ProtocolDeps], ActionProtocol]] = {
        "tools": ToolsProtocol,
        "json": JsonActionProtocol,
        "tags": TagsProtocol,
    }
    return protocols[deps.config.protocol](deps)
