"""Tools on their own: safe arithmetic, guarded URL fetching, citation checking."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator

import pytest

from agent.citations import check_answer, cited_numbers
from agent.config import AgentConfig
from agent.events import ToolResultEvent
from agent.llm.scripted import ScriptedModelServer, ScriptedTurn
from agent.tools.calculator import CalculatorError, calculate
from agent.tools.fetch_url import FetchRefusedError, check_url
from tests.agent_support import call, collect, finished, make_agent

Factory = Callable[..., ScriptedModelServer]


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", 14),
        ("(1969 - 1492) / 2", 238.5),
        ("sqrt(16) + 2**10", 1028.0),
        ("-3 // 2", -2),
        ("max(1, 7, 3) % 4", 3),
        ("round(pi, 2)", 3.14),
    ],
)
def test_calculator_computes_arithmetic(expression: str, value: float) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('echo pwned')",
        "().__class__.__bases__[0].__subclasses__()",
        "open('/etc/passwd').read()",
        "9 ** 9 ** 9",
        "10 ** 400",
        "'a' * 10",
        "x + 1",
        "lambda: 1",
        "[1, 2][0]",
        "1 / 0",
        "sqrt(-1)",
        "abs(x=1)",
    ],
)
def test_calculator_refuses_everything_else(expression: str) -> None:
    with pytest.raises(CalculatorError):
        calculate(expression)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/x",
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://192.168.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
    ],
)
async def test_fetch_url_refuses_non_public_targets(url: str) -> None:
    with pytest.raises(FetchRefusedError):
        await check_url(url, allow=())


async def test_fetch_url_allow_list_admits_a_host() -> None:
    await check_url("http://127.0.0.1:9/x", allow=("127.0.0.1",))
    await check_url("http://10.1.2.3/x", allow=("10.0.0.0/8",))
    with pytest.raises(FetchRefusedError):
        await check_url("http://10.1.2.3/x", allow=("192.168.0.0/16",))


PAGE = (
    b"<html><head><title>Brill facts</title><script>var x = 1;</script></head>"
    b"<body><h1>The Brill</h1><p>The river Brill is 212 km long.</p></body></html>"
)


@pytest.fixture
def page_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/brill.html"
    httpd.shutdown()
    httpd.server_close()


async def _fetch_run(base_url: str, page: str, allow: tuple[str, ...]) -> list:
    config = AgentConfig(enable_fetch_url=True, fetch_allow_hosts=allow)
    agent = make_agent(base_url, config)
    events = await collect(agent.run("How long is the Brill?", thread_id="t", run_id="r"))
    await agent.aclose()
    return events


async def test_fetch_url_via_the_agent(scripted_model: Factory, page_server: str) -> None:
    def script() -> list[ScriptedTurn]:
        return [
            ScriptedTurn(tool_calls=(call("fetch_url", url=page_server),)),
            ScriptedTurn(content="212 km [1]."),
        ]

    refused = await _fetch_run(scripted_model(script()).base_url, page_server, ())
    result = next(e for e in refused if isinstance(e, ToolResultEvent))
    assert not result.ok and "loopback, private and link-local" in result.observation
    assert finished(refused).sources == []  # [1] was never handed out: removed
    assert finished(refused).removed_citations == [1]

    allowed = await _fetch_run(scripted_model(script()).base_url, page_server, ("127.0.0.1",))
    result = next(e for e in allowed if isinstance(e, ToolResultEvent))
    assert result.ok and "The river Brill is 212 km long." in result.observation
    assert "var x" not in result.observation
    done = finished(allowed)
    assert done.sources[0].title == "Brill facts" and done.sources[0].source == page_server


async def test_fetch_url_is_off_by_default(scripted_model: Factory) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("fetch_url", url="http://example.org/"),)),
            ScriptedTurn(content="no"),
        ]
    )
    agent = make_agent(server.base_url)
    events = await collect(agent.run("q", thread_id="t", run_id="r"))
    await agent.aclose()
    tool_names = [t["function"]["name"] for t in server.requests[0].body["tools"]]
    assert tool_names == ["search", "open", "calculator"]
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert "unknown_tool" in result.observation


def test_citation_checking_forms() -> None:
    assert cited_numbers("a [1], b [2, 3] and [3][4]; [x] [ 5 ]") == [1, 2, 3, 4, 5]
    checked = check_answer("Yes [1][8] and no [2; 9].", known={1, 2}, extra_citations=[3, 1])
    assert checked.text == "Yes [1] and no [2]."
    assert checked.cited == (1, 2) and checked.removed == (8, 9, 3)
