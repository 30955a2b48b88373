"""Errors the API returns: a stable `type`, the right status, a message that says what to do.

Every error body has the shape `{"error": {"type", "message", "param", "code"}}` (the
OpenAI client reads `error.message`; `code` repeats `type`). Nothing else ever reaches
a client: no stack traces, no exception reprs.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import RunErrorKind

log = logging.getLogger(__name__)


class ServiceError(Exception):
    status = 500
    type = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}


class BadRequestError(ServiceError):
    status, type = 400, "bad_request"


class UnauthorizedError(ServiceError):
    status, type = 401, "unauthorized"


class NotFoundError(ServiceError):
    status, type = 404, "not_found"


class ConflictError(ServiceError):
    status, type = 409, "conflict"


class PayloadTooLargeError(ServiceError):
    status, type = 413, "payload_too_large"


class ValidationFailedError(ServiceError):
    status, type = 422, "validation_error"


class RateLimitedError(ServiceError):
    status, type = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, round(retry_after + 0.49)))})
        self.retry_after = retry_after


class QueueFullError(RateLimitedError):
    type = "queue_full"


class UnavailableError(ServiceError):
    status, type = 503, "unavailable"


class NotImplementedHereError(ServiceError):
    status, type = 501, "not_implemented"


# The HTTP status of each way a run can fail (`agent.errors.RunErrorKind`): the model being
# down or overloaded is 503 (retry later), one that answers garbage 502, one that times out
# 504; a request the model rejected is the client's to fix (400); a run that cannot be
# resumed or was cancelled conflicts with the run's state (409); our own bugs are 500.
# Budgets and deadlines are not errors: such a run answers and names its stop reason.
RUN_ERROR_STATUS: dict[RunErrorKind, int] = {
    "model_unreachable": 503,
    "model_unavailable": 503,
    "model_rate_limited": 503,
    "model_server_error": 503,
    "model_protocol_error": 502,
    "model_error": 502,
    "model_timeout": 504,
    "model_request_rejected": 400,
    "nothing_to_resume": 409,
    "cancelled": 409,
    "recursion_limit": 500,
    "internal_error": 500,
}


class RunFailedError(ServiceError):
    """A run ended with a `RunError`; status from `RUN_ERROR_STATUS`, `type` is its kind."""

    def __init__(self, kind: RunErrorKind, message: str) -> None:
        super().__init__(f"the research run failed ({kind}): {message}")
        self.status = RUN_ERROR_STATUS[kind]
        self.type = kind


def error_body(
    type_: str, message: str, param: str | None = None
) -> dict[str, dict[str, str | None]]:
    return {"error": {"type": type_, "message": message, "param": param, "code": type_}}


def error_response(exc: ServiceError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.type, exc.message, exc.param), status_code=exc.status, headers=exc.headers
    )


_STATUS_TYPES = {
    400: ("bad_request", "fix the request and retry"),
    401: ("unauthorized", "send a valid API key as `Authorization: Bearer <key>`"),
    404: ("not_found", "check the path; GET /docs lists the routes"),
    405: ("method_not_allowed", "use the HTTP method the route documents"),
    413: ("payload_too_large", "send a smaller request body"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            field = ".".join(loc) or "body"
            inner = (err.get("ctx") or {}).get("field")  # set by the shared text check
            if err.get("type") == "invalid_text" and inner:
                field = f"{field}.{inner}" if loc else str(inner)
            problems.append({"field": field, "reason": str(err.get("msg", ""))})
        first = problems[0] if problems else {"field": "body", "reason": "invalid"}
        message = f"field `{first['field']}`: {first['reason']}; fix that field and resend"
        body = error_body("validation_error", message, first["field"])
        body["errors"] = problems  # type: ignore[assignment]
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_, hint = _STATUS_TYPES.get(exc.status_code, ("http_error", "see the API docs"))
        detail = exc.detail if isinstance(exc.detail, str) else type_
        return JSONResponse(
            error_body(type_, f"{detail}: {hint}"),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            error_body(
                "internal_error",
                "the server failed unexpectedly; retry, and report it with the server log if "
                "it persists",
            ),
            status_code=500,
        )
