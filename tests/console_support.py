"""Helpers for the console tests (no tests here): a corpus with a hostile passage and a
Chinese one, a scripted model that plays one scenario per question, and the OS Chromium
driven by Playwright."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from retrieval.types import Passage
from serving.runtime import Components
from serving.settings import Settings
from testing.scripted import ScriptedTurn, ScriptRequest
from tests.agent_support import call, corpus_passages

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "console-screenshots"

XSS_PASSAGE = (
    'Harmless words <img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script>.'
)
XSS_ANSWER = 'The page says <b>bold</b><img src=x onerror="window.__xss=3"> [1].'
ZH_TEXT = "弗里多尼亚的首都是西尔瓦尼亚城，城市建于一七一二年。"

TWO_HOP = "Who founded the capital of Freedonia?"
FOLLOW_UP = "What happens to the river there every spring?"
SLOW = "Think slowly about marmots."
STOPPABLE = "Think forever about marmots."
XSS_Q = "Show me the harmless words."
ZH_Q = "弗里多尼亚的首都是哪里？"
MEASURE = "How fast does the first thought arrive?"
SLOW_REASONING = " ".join(f"marmot-thought-{i:02d}." for i in range(20))


def console_passages() -> list[Passage]:
    extra = [
        Passage(900, "notes/hostile", 0, "Hostile <i>title</i>", XSS_PASSAGE, "notes/hostile.md",
                0, len(XSS_PASSAGE)),
        Passage(901, "zh/freedonia", 0, "弗里多尼亚", ZH_TEXT, "zh/弗里多尼亚.md", 0, len(ZH_TEXT)),
    ]  # fmt: skip
    return [*corpus_passages(), *extra]


def write_console_passages(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for p in console_passages():
            fh.write(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + "\n")
    return path


def _numbers(messages: list[dict[str, Any]]) -> dict[int, str]:
    """Citation number -> passage text, read from the tool observations the agent sent."""
    out: dict[int, str] = {}
    for m in messages:
        if m.get("role") == "tool":
            for n, text in re.findall(r"\[(\d+)\] [^\n]*\n([^\n]*)", str(m.get("content", ""))):
                out[int(n)] = text
    return out


def cite(messages: list[dict[str, Any]], phrase: str) -> int:
    return next(n for n, text in _numbers(messages).items() if phrase in text)


def console_turn(req: ScriptRequest) -> ScriptedTurn:
    """One scenario per question (the last user message); each step sees its tool results."""
    messages = req.body.get("messages", [])
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    question = str(messages[users[-1]]["content"]) if users else ""
    done = sum(1 for m in messages[users[-1] if users else 0 :] if m.get("role") == "tool")
    if TWO_HOP in question:
        if done == 0:
            return ScriptedTurn(
                reasoning="First I need the capital of Freedonia.",
                tool_calls=(call("search", query="capital of Freedonia"),),
            )
        if done == 1:
            return ScriptedTurn(
                reasoning="The capital is Sylvania City. Now: who founded Sylvania City?",
                tool_calls=(call("search", query="Sylvania City founded traders"),),
            )
        capital, founded = cite(messages, "Its capital"), cite(messages, "1712")
        return ScriptedTurn(
            reasoning="Both hops are answered.",
            content=f"Freedonia's capital is Sylvania City [{capital}], founded in 1712 by "
            f"river traders [{founded}].",
        )
    if FOLLOW_UP in question:
        if done == 0:
            return ScriptedTurn(
                reasoning="The river of Sylvania City is the Brill.",
                tool_calls=(call("search", query="river Brill floods spring"),),
            )
        return ScriptedTurn(
            reasoning="It floods.",
            content=f"The Brill floods every spring [{cite(messages, 'floods')}].",
        )
    if SLOW in question:
        return ScriptedTurn(reasoning=SLOW_REASONING, content="Marmots hibernate.", latency=0.06)
    if STOPPABLE in question:
        return ScriptedTurn(reasoning=SLOW_REASONING * 5, content="never", latency=0.1)
    if XSS_Q in question:
        if done == 0:
            return ScriptedTurn(
                reasoning="<script>window.__xss=4</script> looking it up",
                tool_calls=(call("search", query="harmless words"),),
            )
        return ScriptedTurn(
            reasoning="ok", content=XSS_ANSWER.replace("[1]", f"[{cite(messages, 'Harmless')}]")
        )
    if ZH_Q in question:
        if done == 0:
            return ScriptedTurn(
                reasoning="我需要查一下首都。",
                tool_calls=(call("search", query="弗里多尼亚 首都"),),
            )
        return ScriptedTurn(
            reasoning="找到了。", content=f"首都是西尔瓦尼亚城 [{cite(messages, '西尔瓦尼亚城')}]。"
        )
    if MEASURE in question:  # the delay lets a raw SSE reader connect before the first token
        return ScriptedTurn(
            reasoning="Measuring the stream.", content="Done.", first_byte_delay=0.8
        )
    return ScriptedTurn(reasoning="No scenario.", content="I have no scripted answer.")


def chromium_available() -> bool:
    if shutil.which(CHROMIUM) is None:
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


class DroppingProxy:
    """A loopback TCP proxy that cuts the first run event stream after `cut_after` bytes of
    its response: a dropped connection, as a flaky network or a proxy timeout makes one."""

    def __init__(self, target_port: int, cut_after: int = 2500) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            state = {"events": False, "sent": 0}
            threading.Thread(
                target=self._pipe, args=(client, upstream, state, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe, args=(upstream, client, state, False), daemon=True
            ).start()

    def _pipe(
        self, src: socket.socket, dst: socket.socket, state: dict[str, Any], up: bool
    ) -> None:
        try:
            while chunk := src.recv(65536):
                if up and b"/events HTTP/1.1" in chunk and self.cuts == 0:
                    state["events"] = True
                if not up and state["events"]:
                    state["sent"] += len(chunk)
                    if state["sent"] > self.cut_after:
                        self.cuts += 1
                        state["events"] = False
                        raise ConnectionResetError("cut by the test proxy")
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@contextlib.contextmanager
def app_server(settings: Settings, components: Callable[[Settings], Components]) -> Iterator[str]:
    """`create_app(settings, components=...)` under a real uvicorn in a thread; yields its URL."""
    import uvicorn

    from serving.http.app import create_app

    app = create_app(settings, components=components)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start within 30s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(10)
