"""Prompts as package data with named slots; a config overrides one slot at a time.

Slots: persona, tool_guidance (one default per action protocol), answer_format,
finalize (one default per answer style), condense, plan, tags_template. `{{name}}` marks a
value filled at run time.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from agent.config import AgentConfig, PromptSlot

_STYLED = frozenset({"answer_format", "finalize"})


@cache
def _packaged(filename: str) -> str:
    return resources.files(__package__).joinpath(filename).read_text(encoding="utf-8").strip()


def fill(template: str, **values: str) -> str:
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", value)
    return template


class Prompts:
    """Resolves slots for one agent: the override when set, else the packaged text."""

    def __init__(self, config: AgentConfig) -> None:
        self._config = config

    def slot(self, name: PromptSlot) -> str:
        override = self._config.prompts.get(name)
        if override is not None:
            return override
        if name == "tool_guidance":
            return _packaged(f"tool_guidance.{self._config.protocol}.md")
        if name in _STYLED and self._config.answer_style != "cited":
            return _packaged(f"{name}.{self._config.answer_style}.md")
        return _packaged(f"{name}.md")

    def system(self, tools_text: str) -> str:
        parts = [
            self.slot("persona"),
            fill(self.slot("tool_guidance"), tools=tools_text),
            self.slot("answer_format"),
        ]
        return "\n\n".join(p for p in parts if p)
