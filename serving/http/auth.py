"""Bearer API keys.

With no keys configured the service is open, which `Settings.check_exposure` allows only
on a loopback address (or when an operator explicitly says a proxy authenticates). Keys
arrive as `Authorization: Bearer <key>` (OpenAI clients, curl) or `x-api-key: <key>`
(the langgraph-sdk client). A caller is identified by a short hash of its key, never the
key itself, so logs, metrics and the database stay secret-free. That key id also owns the
threads and runs the caller creates: with keys configured, each key sees only its own (so
retiring a key retires access to what it created).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.requests import Request

from serving.http.errors import UnauthorizedError


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str  # "key:<hash prefix>" or, with auth off, "ip:<client address>"
    authenticated: bool = False  # True when the service checks keys

    def owns(self, owner: str) -> bool:
        """Whether this caller may see a thread or run recorded with `owner`.

        With auth off the service is one shared space, as it always was; with keys, a key
        sees only what it created (old rows no key could be traced to have owner `''`).
        """
        return not self.authenticated or owner == self.key_id

    @property
    def scope(self) -> str | None:
        """The owner a listing filters on: this key's id, or None (everything) with auth off."""
        return self.key_id if self.authenticated else None


class Authenticator:
    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @staticmethod
    def presented_key(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return request.headers.get("x-api-key") or None

    def authenticate(self, request: Request) -> Principal:
        if not self._keys:
            host = request.client.host if request.client else "unknown"
            return Principal(key_id=f"ip:{host}")
        key = self.presented_key(request)
        if key is None:
            raise UnauthorizedError(
                "this server requires an API key: send `Authorization: Bearer <key>` "
                "(or `x-api-key: <key>`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        candidate = key.encode()
        if not any(hmac.compare_digest(candidate, k) for k in self._keys):
            raise UnauthorizedError(
                "the API key is not valid: check it against the server's THINKRAG_API_KEYS",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Principal(key_id=key_id(key), authenticated=True)


def key_id(key: str) -> str:
    """A key's public name: a short hash, never the key (logs, metrics, owners)."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]
