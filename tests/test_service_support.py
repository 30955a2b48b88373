"""Helpers for the service tests (no tests here): a scripted research model, the service
under uvicorn in a thread or in a subprocess, and SSE parsing."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from serving.settings import Settings
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
from tests.agent_support import call, corpus_passages

REPO = Path(__file__).resolve().parents[1]
ModelFactory = Callable[..., ScriptedModelServer]


@dataclass
class _Database:
    url: str | None = None  # a Postgres database while `store_backend` runs a test on it


DATABASE = _Database()  # set by the `store_backend` fixture (tests/fixtures/postgres.py)


def store_config() -> dict[str, Any]:
    """The settings that put a service on the store under test: {} for the SQLite file
    at db_path; a Postgres URL (and a short lease, so a killed server's runs are taken
    over within a second) when `store_backend` runs the test on Postgres."""
    if DATABASE.url is None:
        return {}
    return {"database_url": DATABASE.url, "lease_seconds": 1.0}


def research_turn(req: ScriptRequest) -> ScriptedTurn:
    """Search first; once a tool result is in the conversation, answer citing [1]."""
    messages = req.body.get("messages", [])
    if any(m.get("role") == "tool" for m in messages):
        return ScriptedTurn(
            reasoning="The search says the capital is Sylvania City.",
            content="The capital of Freedonia is Sylvania City [1].",
        )
    return ScriptedTurn(
        reasoning="I should look up the capital of Freedonia.",
        tool_calls=(call("search", query="capital of Freedonia"),),
    )


def write_passages(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for p in corpus_passages():
            fh.write(json.dumps(dataclasses.asdict(p)) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_settings(tmp: Path, model_url: str, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "memory_passages": write_passages(tmp / "passages.jsonl"),
        "model_url": model_url,
        "model_name": "scripted",
        "db_path": tmp / "service.db",
        "sse_keepalive_seconds": 1.0,
        "top_k": 2,
        **store_config(),
    }
    values.update(kw)
    return Settings(**values)


class ThreadServer:
    """The real app under a real uvicorn server, in a background thread."""

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        from serving.cli.serve_cmd import server_config
        from serving.http.app import create_app

        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        config = server_config(create_app(settings), settings, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not start within 20s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class ProcessServer:
    """`python -m serving --config FILE` as a subprocess (so it can be SIGKILLed)."""

    config: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--config", str(self.config), "--port",
             str(self.port)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"service exited early: {err[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("service did not become healthy in time")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    lines = []
    for key, value in settings.items():
        lines.append(f"{key} = {json.dumps(str(value) if isinstance(value, Path) else value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str, str | None]]:
    """(event, data, id) per SSE block, parsed by hand (curl-level)."""
    event, ident = "message", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data), ident
            event, data, ident = "message", [], None
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                ident = value
