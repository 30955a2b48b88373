"""Request dependencies shared by the route modules: services, caller identity, limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from serving.auth import Principal
from serving.errors import RateLimitedError

if TYPE_CHECKING:
    from serving.app import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def principal(request: Request) -> Principal:
    """Authenticate the caller and charge one request to its rate limit."""
    svc = services(request)
    who = svc.auth.authenticate(request)
    try:
        svc.limiter.check(who.key_id)
    except RateLimitedError:
        svc.metrics.rejected.labels(reason="rate").inc()
        raise
    return who
