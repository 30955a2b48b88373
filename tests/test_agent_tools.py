"""Tools on their own: safe arithmetic, guarded URL fetching, citation checking."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from agent.citations import check_answer, cited_numbers
from agent.config import AgentConfig
from agent.events import ToolResultEvent
from agent.tools.base import ToolError
from agent.tools.calculator import CalculatorError, CalculatorTool, calculate
from agent.tools.fetch_url import FetchRefusedError, FetchUrlTool, IPAddress, check_url, fetch_page
from agent.tools.open import OpenTool
from agent.tools.search import SearchTool
from testing.scripted import ScriptedModelServer, ScriptedTurn
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


@dataclass
class LocalSite:
    """A real HTTP(S) server on 127.0.0.1 that records what each request said."""

    port: int
    hosts: list[str] = field(default_factory=list)  # Host headers, in order
    snis: list[str | None] = field(default_factory=list)  # TLS server names, in order


@contextlib.contextmanager
def serve_site(tls: ssl.SSLContext | None = None) -> Iterator[LocalSite]:
    """`/brill.html` is PAGE; `/away?to=URL` redirects to URL."""
    site = LocalSite(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.hosts.append(self.headers.get("host", ""))
            parts = urlsplit(self.path)
            if parts.path == "/away":
                self.send_response(302)
                self.send_header("location", parse_qs(parts.query)["to"][0])
                self.send_header("content-length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: site.snis.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    site.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with serve_site() as running:
        yield running


@pytest.fixture
def page_server(site: LocalSite) -> str:
    return f"http://127.0.0.1:{site.port}/brill.html"


async def _fetch_run(
    base_url: str, page: str, allow: tuple[str, ...], tool: FetchUrlTool | None = None
) -> list:
    config = AgentConfig(enable_fetch_url=True, fetch_allow_hosts=allow)
    tools = None if tool is None else [SearchTool(), OpenTool(), CalculatorTool(), tool]
    agent = make_agent(base_url, config, tools=tools)
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


class ScriptedResolver:
    """Answers each lookup of a name with its next scripted address list (the last one
    repeats), like a DNS server whose answers change between queries."""

    def __init__(self, answers: dict[str, Sequence[Sequence[str]]]) -> None:
        self.answers = {host: [list(a) for a in lists] for host, lists in answers.items()}
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append(host)
        if host not in self.answers:
            raise ToolError(f"cannot resolve host {host!r}")
        queue = self.answers[host]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return [ipaddress.ip_address(a) for a in answer]


async def test_fetch_url_connects_to_the_checked_address_not_a_rebound_one(
    scripted_model: Factory, site: LocalSite
) -> None:
    # The attack: a name answers an allowed address to the check and another (here
    # 127.0.0.2, neither allow-listed nor served) to any later lookup.
    resolver = ScriptedResolver({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    url = f"http://rebind.test:{site.port}/brill.html"
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("fetch_url", url=url),)),
            ScriptedTurn(content="212 km [1]."),
        ]
    )
    events = await _fetch_run(server.base_url, url, ("127.0.0.1",), FetchUrlTool(resolver))
    result = next(e for e in events if isinstance(e, ToolResultEvent))
    assert result.ok and "The river Brill is 212 km long." in result.observation
    assert resolver.calls == ["rebind.test"]  # resolved once, connected to that answer
    assert site.hosts == [f"rebind.test:{site.port}"]  # the Host header keeps the name
    assert finished(events).sources[0].source == url
    # The later answer is indeed hostile: a lookup now is refused before any connection.
    with pytest.raises(FetchRefusedError, match=r"refusing rebind\.test \(127\.0\.0\.2\)"):
        await fetch_page(url, allow=("127.0.0.1",), max_bytes=10_000, timeout=5, resolver=resolver)
    assert len(site.hosts) == 1


@pytest.mark.parametrize(
    "answer",
    [
        ["10.1.2.3"],
        ["93.184.215.14", "192.168.1.5"],  # one private address among public ones
        ["::ffff:127.0.0.1"],  # IPv4-mapped loopback
        ["2002:a9fe:a9fe::1"],  # 6to4 around 169.254.169.254
        ["64:ff9b::a00:1"],  # NAT64 around 10.0.0.1
    ],
)
async def test_fetch_url_refuses_a_name_resolving_to_a_private_address(answer: list[str]) -> None:
    resolver = ScriptedResolver({"intranet.example": [answer]})
    with pytest.raises(FetchRefusedError) as refused:
        await check_url("https://intranet.example/wiki", allow=(), resolver=resolver)
    message = str(refused.value)
    assert message.startswith("refusing intranet.example (")
    assert "loopback, private and link-local addresses are blocked" in message
    assert "fetch_allow_hosts" in message


async def test_check_url_returns_the_addresses_to_pin() -> None:
    resolver = ScriptedResolver({"public.example": [["93.184.215.14", "93.184.215.14"]]})
    checked = await check_url("https://public.example/a", allow=(), resolver=resolver)
    assert checked.addresses == (ipaddress.ip_address("93.184.215.14"),)
    assert str(checked.pinned(checked.addresses[0])) == "https://93.184.215.14/a"


async def test_fetch_url_checks_and_pins_every_redirect_hop(site: LocalSite) -> None:
    resolver = ScriptedResolver(
        {"site.test": [["127.0.0.1"]], "metadata.test": [["169.254.169.254"]]}
    )
    start = f"http://site.test:{site.port}"
    page = await fetch_page(
        f"{start}/away?to=/brill.html",
        allow=("127.0.0.1",),
        max_bytes=10_000,
        timeout=5,
        resolver=resolver,
    )
    # A relative redirect to the same host is still resolved and checked again.
    assert page.url == f"{start}/brill.html" and page.title == "Brill facts"
    assert resolver.calls == ["site.test", "site.test"]
    assert site.hosts == [f"site.test:{site.port}"] * 2
    with pytest.raises(FetchRefusedError, match=r"refusing metadata\.test \(169\.254"):
        await fetch_page(
            f"http://127.0.0.1:{site.port}/away?to=http://metadata.test/latest/",
            allow=("127.0.0.1",),
            max_bytes=10_000,
            timeout=5,
            resolver=resolver,
        )
    assert len(site.hosts) == 3  # the refused hop never reached a server


def _tls_pair(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for `name`, client context trusting its CA)."""
    pytest.importorskip("cryptography", reason="the dev extra installs it: pip install -e .[dev]")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        signer: ec.EllipticCurvePrivateKey,
        *,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "thinkrag test CA")])
    ca_cert = issue("thinkrag test CA", ca_key, ca_name, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = issue(name, leaf_key, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf.key"
    cert_file.write_bytes(leaf_cert.public_bytes(pem))
    key_file.write_bytes(
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(pem).decode())
    return server, client


async def test_fetch_url_pinned_https_keeps_sni_and_certificate_checks(tmp_path: Path) -> None:
    server_tls, client_tls = _tls_pair(tmp_path, "pinned.test")
    resolver = ScriptedResolver({"pinned.test": [["127.0.0.1"]], "impostor.test": [["127.0.0.1"]]})
    with serve_site(server_tls) as tls_site:
        url = f"https://pinned.test:{tls_site.port}/brill.html"
        page = await fetch_page(
            url,
            allow=("127.0.0.1",),
            max_bytes=10_000,
            timeout=5,
            resolver=resolver,
            ssl_context=client_tls,
        )
        assert page.title == "Brill facts" and page.url == url
        assert tls_site.snis == ["pinned.test"]
        assert tls_site.hosts == [f"pinned.test:{tls_site.port}"]
        # Connecting by IP does not relax verification: the certificate must match the name.
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await fetch_page(
                f"https://impostor.test:{tls_site.port}/brill.html",
                allow=("127.0.0.1",),
                max_bytes=10_000,
                timeout=5,
                resolver=resolver,
                ssl_context=client_tls,
            )
        assert len(tls_site.hosts) == 1


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
