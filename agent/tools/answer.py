"""The `answer` action's arguments: shared by the tools protocol's answer tool and the
json protocol's answer branch, so both bound the answer the same way."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnswerArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(..., min_length=1, max_length=4000, description="The final answer.")
    citations: list[int] = Field(
        default_factory=list, max_length=20, description="Numbers [n] of supporting passages."
    )
