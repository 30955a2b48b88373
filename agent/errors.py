"""Every way the agent fails, in one tree, and the run-error kinds clients see.

    AgentError
    ├── AgentUsageError          the agent was called wrongly (also a ValueError)
    ├── ToolError                a tool could not do what was asked; the model reads it
    └── ModelError               the model endpoint failed (`attempts` tries were made)
        ├── ModelConnectionError     refused, DNS, reset: nothing answered
        ├── ModelTimeoutError        a phase (connect, first byte, chunk gap, total) ran long
        ├── ModelProtocolError       the answer is not the OpenAI protocol
        ├── ModelUsageError          refused before sending (also a ValueError)
        └── ModelHTTPError           an HTTP error status (`status`, `body`)
            ├── ModelRateLimitedError    429 after all retries
            ├── ModelServerError         5xx after all retries
            └── ModelRequestError        other 4xx: the request was rejected; never retried

A run does not raise: it ends with a `RunError` event whose `kind` is one of
`RunErrorKind` (`run_error_kind` maps an exception to it). The service maps each kind to an
HTTP status in one table (`serving.http.errors.RUN_ERROR_STATUS`). Budgets and deadlines are
not errors: the run answers from what it found and says why (`StopReason`).
"""

from __future__ import annotations

from typing import Literal


class AgentError(Exception):
    """Base of every failure the agent reports."""


class AgentUsageError(AgentError, ValueError):
    """The agent was called wrongly (e.g. an empty question)."""


class ToolError(AgentError):
    """A tool could not do what was asked; the message is shown to the model as is."""


class ModelError(AgentError):
    """Base class for failures of the model endpoint."""

    attempts: int = 1  # how many times the client tried before giving up


class ModelConnectionError(ModelError):
    """The server could not be reached (refused, DNS, reset) after retries."""


class ModelTimeoutError(ModelError):
    """A phase (connect, first byte, between chunks, total) took too long."""


class ModelHTTPError(ModelError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"model server answered HTTP {status}: {message}")
        self.status = status
        self.body = message


class ModelRateLimitedError(ModelHTTPError):
    """429 after all retries."""


class ModelServerError(ModelHTTPError):
    """5xx after all retries."""


class ModelRequestError(ModelHTTPError):
    """4xx other than 429: our request is wrong; never retried."""


class ModelProtocolError(ModelError):
    """The server answered something that is not the OpenAI protocol (bad JSON, cut stream)."""


class ModelUsageError(ModelError, ValueError):
    """The caller asked for something the client refuses before sending (e.g. guided_* fields)."""


RunErrorKind = Literal[
    "model_unreachable",  # ModelConnectionError
    "model_timeout",  # ModelTimeoutError
    "model_rate_limited",  # ModelRateLimitedError
    "model_server_error",  # ModelServerError
    "model_request_rejected",  # ModelRequestError, ModelUsageError: the request is wrong
    "model_protocol_error",  # ModelProtocolError
    "model_error",  # any other ModelError
    "model_unavailable",  # the service saw the model fail outside the agent's loop
    "nothing_to_resume",  # resume() of a run the thread does not hold
    "recursion_limit",  # LangGraph's step limit hit first: our bug (budgets stop runs)
    "internal_error",  # our bug
    "cancelled",  # a client cancelled the run
]

# Most specific first: the first class an exception is an instance of names its kind.
_MODEL_ERROR_KINDS: tuple[tuple[type[ModelError], RunErrorKind], ...] = (
    (ModelConnectionError, "model_unreachable"),
    (ModelTimeoutError, "model_timeout"),
    (ModelRateLimitedError, "model_rate_limited"),
    (ModelServerError, "model_server_error"),
    (ModelRequestError, "model_request_rejected"),
    (ModelUsageError, "model_request_rejected"),
    (ModelProtocolError, "model_protocol_error"),
)


def run_error_kind(exc: ModelError) -> RunErrorKind:
    """The run-error kind a model failure is reported under."""
    return next((kind for cls, kind in _MODEL_ERROR_KINDS if isinstance(exc, cls)), "model_error")
