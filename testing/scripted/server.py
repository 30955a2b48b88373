"""A scripted model server speaking vLLM's OpenAI wire protocol over real HTTP.

Tests need responses a real model cannot be made to produce on demand (legacy reasoning
fields, unclosed `<think>`, malformed tool arguments, 429s, cut streams). This server plays
a script of `ScriptedTurn`s through the same bytes vLLM 0.32 sends, so the client and the
agent are exercised over a real socket rather than through mocks. The app itself lives in
`app.py`, the script types in `script.py`; this module holds the server lifecycle.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from testing.scripted.script import (
    Counters,
    Script,
    ScriptedTurn,
    ScriptExhaustedError,
    ScriptRequest,
)

__all__ = ["Script", "ScriptExhaustedError", "ScriptRequest", "ScriptedModelServer", "ScriptedTurn"]


class ScriptedModelServer:
    """Serve a script over loopback HTTP (FastAPI under uvicorn in a background thread).

    `start()` returns the base URL ending in `/v1`; `stop()` shuts the server down. Every
    request is appended to `requests`. A sequence script is consumed one turn per request;
    a callable script is called with each `ScriptRequest`.
    """

    def __init__(
        self,
        script: Script,
        *,
        model: str = "scripted",
        latency: float = 0.0,
        chunk_chars: int = 8,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError(f"chunk_chars must be >= 1, got {chunk_chars}")
        self.model = model
        self.latency = latency
        self.chunk_chars = chunk_chars
        self.requests: list[ScriptRequest] = []
        self.counters = Counters()
        self._script = script
        self._next_turn = 0
        self._lock = threading.Condition()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- script -------------------------------------------------------------------------
    def record(self, endpoint: str, body: dict[str, Any]) -> ScriptRequest:
        req = ScriptRequest(endpoint=endpoint, body=body)
        with self._lock:
            self.requests.append(req)
            self.counters.requests += 1
        return req

    def next_turn(self, req: ScriptRequest) -> ScriptedTurn:
        if callable(self._script):
            return self._script(req)
        with self._lock:
            if self._next_turn >= len(self._script):
                raise ScriptExhaustedError(
                    f"ScriptedModelServer script exhausted: {len(self._script)} turn(s) "
                    f"were scripted but request #{len(self.requests)} ({req.endpoint}) "
                    "arrived; add more ScriptedTurn entries to the script"
                )
            turn = self._script[self._next_turn]
            self._next_turn += 1
            return turn

    def mark_disconnected(self, req: ScriptRequest) -> None:
        with self._lock:
            req.disconnected = True
            self._lock.notify_all()

    def mark_completed(self, req: ScriptRequest) -> None:
        with self._lock:
            req.completed = True
            self._lock.notify_all()

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """Block until some request saw its client hang up (True) or the timeout (False)."""
        with self._lock:
            return self._lock.wait_for(
                lambda: any(r.disconnected for r in self.requests), timeout=timeout
            )

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, timeout: float = 10.0, *, port: int = 0) -> str:
        """Bind a loopback port (a free one unless given), serve in a thread, and return
        `http://127.0.0.1:P/v1`. Passing the old port after `stop()` brings the same URL
        back, as a restarted model server would."""
        if self._thread is not None:
            return self.base_url
        import uvicorn

        from testing.scripted.app import build_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self),
            log_level="error",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="scripted-model", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    "ScriptedModelServer did not start within "
                    f"{timeout}s; check that uvicorn and fastapi are installed"
                )
            time.sleep(0.005)
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._thread = None

    @property
    def root_url(self) -> str:
        """The server root (where /tokenize and /metrics live)."""
        return self.base_url.removesuffix("/v1")

    def __enter__(self) -> ScriptedModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
