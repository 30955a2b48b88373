"""Typed failures talking to a model server (the client's exception tree)."""


class ModelError(Exception):
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
