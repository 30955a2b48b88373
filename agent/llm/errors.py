"""The model client's failures: defined with the rest of the agent's tree in `agent.errors`."""

from agent.errors import (
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelProtocolError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelServerError,
    ModelTimeoutError,
    ModelUsageError,
)

__all__ = [
    "ModelConnectionError",
    "ModelError",
    "ModelHTTPError",
    "ModelProtocolError",
    "ModelRateLimitedError",
    "ModelRequestError",
    "ModelServerError",
    "ModelTimeoutError",
    "ModelUsageError",
]
