"""Request dependencies shared by the route modules: services, caller identity, limits,
and the ownership lookups every thread and run route goes through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from urllib.parse import quote

from fastapi import Path, Request
from pydantic import AfterValidator

from serving.http.auth import Principal
from serving.http.auth_gate import CALLER
from serving.http.errors import ConflictError, NotFoundError, RateLimitedError
from serving.http.run_store import RunRecord, ThreadRecord
from serving.http.textcheck import ID_MAX_LENGTH
from serving.http.wire import valid_thread_id

if TYPE_CHECKING:
    from serving.http.services import Services


# A thread id in a path follows the same rule as one in a body (`wire.ThreadId`).
ThreadIdPath = Annotated[
    str, Path(min_length=1, max_length=ID_MAX_LENGTH), AfterValidator(valid_thread_id)
]


def url_path(*segments: str) -> str:
    """An absolute path for a header: ids percent-encoded, since headers are Latin-1 and
    a thread id may be any Unicode (D7: a non-Latin-1 id made run creation fail)."""
    return "/" + "/".join(quote(s, safe="") for s in segments)


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def principal(request: Request) -> Principal:
    """Authenticate the caller and charge one request to its rate limit."""
    svc = services(request)
    gated = request.scope.get("state", {}).get(CALLER)  # checked by the gate already
    who = gated if isinstance(gated, Principal) else svc.auth.authenticate(request)
    try:
        svc.limiter.check(who.key_id)
    except RateLimitedError:
        svc.metrics.rejected.labels(reason="rate").inc()
        raise
    return who


def visible_thread(svc: Services, who: Principal, thread_id: str) -> ThreadRecord | None:
    """The thread, or None if it is missing or another key's (so both answer the same 404)."""
    thread = svc.store.get_thread(thread_id)
    return thread if thread is not None and who.owns(thread.owner) else None


def visible_run(svc: Services, who: Principal, run_id: str) -> RunRecord | None:
    """The run, or None if it is missing or it (or its thread) belongs to another key."""
    run = svc.store.get_run(run_id)
    if run is None or not who.owns(run.owner):
        return None
    return run if visible_thread(svc, who, run.thread_id) is not None else None


def thread_id_taken(thread_id: str) -> ConflictError:
    """Creating a thread under an id another key holds: ids are global, so it cannot be made."""
    return ConflictError(
        f"thread id {thread_id} is already taken; pick another id or let the server choose one"
    )


def check_model(svc: Services, model: str) -> None:
    """404 naming the one model the OpenAI-compatible routes serve (the research agent)."""
    if model != svc.settings.assistant_name:
        raise NotFoundError(
            f"model {model!r} does not exist here; use {svc.settings.assistant_name!r} "
            "(GET /v1/models lists it)",
            param="model",
        )
