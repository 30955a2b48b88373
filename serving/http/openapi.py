"""The OpenAPI document says what the service really answers (D23).

FastAPI documents only a route's success and its 422. Every route can also answer the
errors of `serving.http.errors` (bad JSON 400, missing key 401, unknown id 404, conflict
409, body too large 413, rate limit 429, model down 503), always in the one error shape;
streams are `text/event-stream` and `/metrics` is Prometheus text (their routes say so
with `response_class`). Clients and fuzzers generated from the schema then expect what
they get.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_ERRORS = {
    400: "Malformed request (bad JSON, a Last-Event-ID this server never sent)",
    401: "Missing or invalid API key (only when the server has keys)",
    404: "No such route, thread, run or assistant (or one another key owns)",
    409: "Conflicts with the thread's or run's state",
    413: "Request body over the size limit",
    422: "A field is invalid; `error.param` names it",
    429: "Rate limit, per-key run limit or queue full; see Retry-After",
    503: "The model server or the service is unavailable; retry later",
}


class ErrorDetail(BaseModel):
    type: str
    message: str
    param: str | None = None
    code: str


class FieldProblem(BaseModel):
    field: str
    reason: str


class ServerSentEvent(BaseModel):
    """One event of a `text/event-stream` response (`data` is JSON text, or `[DONE]`)."""

    event: str | None = None
    id: str | None = None
    data: str
    retry: int | None = None


class ErrorBody(BaseModel):
    """Every error the service returns, whatever the status."""

    error: ErrorDetail
    errors: list[FieldProblem] | None = None


def install_openapi(app: FastAPI) -> None:
    """Replace the app's schema builder with one that documents every error status."""

    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorDetail, FieldProblem, ErrorBody, ServerSentEvent):
            components[model.__name__] = model.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        components["ErrorBody"].pop("$defs", None)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        event = {"$ref": "#/components/schemas/ServerSentEvent"}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for response in responses.values():
                    if "text/event-stream" in response.get("content", {}):
                        response["content"]["text/event-stream"] = {"itemSchema": event}
                for status, description in _ERRORS.items():
                    responses[str(status)] = {"description": description, "content": error}
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
