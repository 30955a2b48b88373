"""OpenAIClient against the scripted server (real HTTP) and httpx.MockTransport."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import httpx
import pytest

from agent.errors import (
    ModelConnectionError,
    ModelProtocolError,
    ModelRateLimitedError,
    ModelRequestError,
    ModelServerError,
    ModelTimeoutError,
    ModelUsageError,
)
from agent.llm.client import OpenAIClient, RetryPolicy, Timeouts
from agent.llm.think import answer_from_reasoning, answer_missing, split_think
from agent.llm.types import ChatRequest, ChatResult, Delta, Message, ReasoningModel, Usage
from testing.scripted import ScriptedTurn

pytestmark = pytest.mark.timeout(60)

ASK = ChatRequest(messages=[Message("user", "What is the capital of France?")], max_tokens=64)
NO_WAIT = RetryPolicy(attempts=3, base=0.0, cap=0.0)


async def _stream(
    client: OpenAIClient, request: ChatRequest = ASK
) -> tuple[list[Delta], ChatResult]:
    deltas: list[Delta] = []
    final: ChatResult | None = None
    async for item in client.stream_chat(request):
        if isinstance(item, ChatResult):
            final = item
        else:
            deltas.append(item)
    assert final is not None
    return deltas, final


def _text(deltas: list[Delta], kind: str) -> str:
    return "".join(d.text for d in deltas if d.kind == kind)


@pytest.mark.parametrize(
    "turn",
    [
        ScriptedTurn(reasoning="France... Paris.", content="Paris"),
        ScriptedTurn(
            reasoning="France... Paris.", content="Paris", reasoning_field="reasoning_content"
        ),
        ScriptedTurn(reasoning="France... Paris.", content="Paris", think_in_content=True),
    ],
    ids=["reasoning", "reasoning_content", "think_tags"],
)
async def test_reasoning_shapes_stream_and_not(scripted_model, turn: ScriptedTurn) -> None:
    server = scripted_model([turn, turn], chunk_chars=3)  # tags split across chunks
    async with OpenAIClient(server.base_url, "scripted") as client:
        assert isinstance(client, ReasoningModel)
        plain = await client.chat(ASK)
        deltas, streamed = await _stream(client)
    for result in (plain, streamed):
        assert result.reasoning == "France... Paris."
        assert result.content == "Paris"
        assert result.finish_reason == "stop"
    assert _text(deltas, "reasoning") == "France... Paris."
    assert _text(deltas, "content") == "Paris"
    assert server.requests[1].body["stream_options"] == {"include_usage": True}


async def test_unclosed_think_is_all_reasoning_and_flagged(scripted_model) -> None:
    turn = ScriptedTurn(reasoning="Paris is the capital.\n\nSo: Paris", unclosed_think=True)
    server = scripted_model([turn, turn], chunk_chars=2)
    async with OpenAIClient(server.base_url, "scripted") as client:
        plain = await client.chat(ASK)
        deltas, streamed = await _stream(client)
    for result in (plain, streamed):
        assert result.content == ""
        assert result.reasoning == "Paris is the capital.\n\nSo: Paris"
        assert answer_missing(result)
        assert answer_from_reasoning(result) == "So: Paris"
    assert _text(deltas, "content") == ""


async def test_missing_opening_tag_moves_head_to_reasoning(scripted_model) -> None:
    turn = ScriptedTurn(reasoning="thinking about it", content="\n\nParis", omit_think_open=True)
    server = scripted_model([turn, turn], chunk_chars=4)
    async with OpenAIClient(server.base_url, "scripted") as client:
        plain = await client.chat(ASK)
        _, streamed = await _stream(client)
    for result in (plain, streamed):
        assert (result.reasoning, result.content) == ("thinking about it", "Paris")
        assert answer_from_reasoning(result) is None


def test_think_splitter_char_by_char() -> None:
    from agent.llm.think import ThinkSplitter

    text = "  <think>a <b> c</th</think>\n\nanswer </thin"
    splitter = ThinkSplitter()
    for ch in text:
        splitter.feed(ch)
    splitter.flush()
    assert splitter.result() == ("a <b> c</th", "answer </thin")
    assert split_think("no tags here") == ("", "no tags here")
    assert split_think("r</think>a", starts_in_reasoning=True) == ("r", "a")


async def test_tool_calls_streamed_in_fragments_and_malformed_kept_raw(scripted_model) -> None:
    good = '{"query": "capital of France", "k": 5}'
    bad = '{"query": "unterminated'
    turn = ScriptedTurn(reasoning="search", tool_calls=(("search", good), ("open", bad)))
    server = scripted_model([turn, turn], chunk_chars=3)
    async with OpenAIClient(server.base_url, "scripted") as client:
        deltas, streamed = await _stream(client)
        plain = await client.chat(ASK)
    for result in (streamed, plain):
        assert result.finish_reason == "tool_calls"
        assert [c.name for c in result.tool_calls] == ["search", "open"]
        assert json.loads(result.tool_calls[0].arguments) == {"query": "capital of France", "k": 5}
        assert result.tool_calls[1].arguments == bad  # the tool layer reports the bad JSON
        assert all(c.id.startswith("call_") for c in result.tool_calls)
        assert result.tool_calls[0].id != result.tool_calls[1].id
    tool_deltas = [d for d in deltas if d.kind == "tool_call"]
    assert len(tool_deltas) > 10 and {d.tool_index for d in tool_deltas} == {0, 1}


async def test_usage_parsed(scripted_model) -> None:
    turn = ScriptedTurn(reasoning="r" * 40, content="c" * 8, prompt_tokens=120, cached_tokens=96)
    server = scripted_model([turn, turn])
    async with OpenAIClient(server.base_url, "scripted") as client:
        plain = await client.chat(ASK)
        _, streamed = await _stream(client)
    expected = Usage(prompt_tokens=120, completion_tokens=12, reasoning_tokens=10, cached_tokens=96)
    assert plain.usage == expected
    assert streamed.usage == expected


async def test_request_body_fields(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(content='{"a": 1}')])
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    request = ChatRequest(
        messages=[Message("user", "q")],
        seed=7,
        temperature=0.0,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        structured_outputs={"json": schema},
        chat_template_kwargs={"enable_thinking": False},
        thinking_token_budget=256,
        tools=[{"type": "function", "function": {"name": "search", "parameters": schema}}],
        tool_choice="required",
    )
    async with OpenAIClient(server.base_url, "scripted") as client:
        await client.chat(request)
        with pytest.raises(ModelUsageError, match="structured_outputs"):
            await client.chat(
                ChatRequest(messages=[Message("user", "q")], extra_body={"guided_json": schema})
            )
    body = server.requests[0].body
    assert body["structured_outputs"] == {"json": schema}
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["thinking_token_budget"] == 256 and body["seed"] == 7
    assert body["tool_choice"] == "required" and body["tools"][0]["function"]["name"] == "search"
    assert not [k for k in body if k.startswith("guided_")]
    assert len(server.requests) == 1  # the guided_* request never left the client


async def test_completions_with_stop(scripted_model) -> None:
    text = "Let me search <search>Eiffel tower</search> and more"
    server = scripted_model([ScriptedTurn(text=text)] * 2)
    async with OpenAIClient(server.base_url, "scripted") as client:
        kept = await client.complete("Q:", stop=["</search>"], include_stop_str_in_output=True)
        cut = await client.complete("Q:", stop=["</search>"])
    assert kept.text == "Let me search <search>Eiffel tower</search>"
    assert cut.text == "Let me search <search>Eiffel tower"
    assert kept.stop_reason == cut.stop_reason == "</search>"
    assert kept.finish_reason == "stop" and kept.usage.prompt_tokens > 0
    assert server.requests[0].body["include_stop_str_in_output"] is True


async def test_429_then_success_honours_retry_after(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(status=429, retry_after=0.4), ScriptedTurn(content="ok")])
    async with OpenAIClient(server.base_url, "scripted", retry=NO_WAIT) as client:
        start = time.monotonic()
        result = await client.chat(ASK)
        waited = time.monotonic() - start
    assert result.content == "ok"
    assert len(server.requests) == 2
    assert waited >= 0.4  # back-off is zero here, so only Retry-After can explain the wait


async def test_500_storm_gives_up_after_attempts(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(status=500, error_message="engine dead")] * 3)
    async with OpenAIClient(server.base_url, "scripted", retry=NO_WAIT) as client:
        with pytest.raises(ModelServerError) as info:
            await client.chat(ASK)
    assert info.value.status == 500 and info.value.attempts == 3
    assert "engine dead" in str(info.value) and "vLLM log" in str(info.value)
    assert len(server.requests) == 3


async def test_429_storm_and_400_not_retried(scripted_model) -> None:
    server = scripted_model(
        [ScriptedTurn(status=429)] * 2
        + [
            ScriptedTurn(
                status=400, error_message='"auto" tool choice requires --enable-auto-tool-choice'
            )
        ]
    )
    retry = RetryPolicy(attempts=2, base=0.0, cap=0.0)
    async with OpenAIClient(server.base_url, "scripted", retry=retry) as client:
        with pytest.raises(ModelRateLimitedError):
            await client.chat(ASK)
        with pytest.raises(ModelRequestError) as info:
            await client.chat(ASK)
    assert info.value.status == 400 and info.value.attempts == 1
    assert "--tool-call-parser" in str(info.value)
    assert len(server.requests) == 3


async def test_stream_cut_midway_is_protocol_error(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(reasoning="x" * 80, cut_stream_after_chunks=4)])
    seen: list[Delta | ChatResult] = []
    async with OpenAIClient(server.base_url, "scripted", retry=NO_WAIT) as client:
        with pytest.raises(ModelProtocolError, match="cut mid-way"):
            async for item in client.stream_chat(ASK):
                seen.append(item)
    assert seen and all(isinstance(d, Delta) for d in seen)
    assert len(server.requests) == 1  # never retried once the stream had yielded


async def test_slow_first_byte_times_out(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(content="late", first_byte_delay=2.0)])
    timeouts = Timeouts(first_byte=0.2, between_chunks=1.0, total=10.0)
    async with OpenAIClient(server.base_url, "scripted", timeouts=timeouts) as client:
        with pytest.raises(ModelTimeoutError, match="first byte"):
            await _stream(client)
    assert server.wait_for_disconnect(timeout=5)


async def test_silence_between_chunks_times_out(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(content="slow" * 10, latency=0.5)])
    timeouts = Timeouts(first_byte=5.0, between_chunks=0.1, total=10.0)
    async with OpenAIClient(server.base_url, "scripted", timeouts=timeouts) as client:
        with pytest.raises(ModelTimeoutError):
            await _stream(client)


@pytest.mark.parametrize("how", ["aclose", "cancel"])
async def test_stopping_a_stream_closes_upstream(scripted_model, how: str) -> None:
    server = scripted_model([ScriptedTurn(reasoning="r" * 2000, latency=0.01)], chunk_chars=4)
    async with OpenAIClient(server.base_url, "scripted") as client:
        first = asyncio.Event()

        async def consume() -> None:
            stream = client.stream_chat(ASK)
            async with contextlib.aclosing(stream):  # type: ignore[type-var]
                async for _ in stream:
                    first.set()
                    if how == "aclose":
                        break

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5)
        if how == "cancel":
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        disconnected = await asyncio.to_thread(server.wait_for_disconnect, 5.0)
    assert disconnected
    assert not server.requests[0].completed


async def test_models_tokenize_metrics_and_model_resolution(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(content="hi")], model="qwen3-tiny")
    async with OpenAIClient(server.base_url) as client:
        assert await client.list_models() == ["qwen3-tiny"]
        ids = await client.tokenize("hello there world")
        assert ids is not None and len(ids) == 3
        assert (await client.chat(ASK)).model == "qwen3-tiny"
        assert "vllm:prompt_tokens_total" in await client.metrics_text()
    assert server.requests[-1].body["model"] == "qwen3-tiny"


async def test_mock_transport_auth_and_missing_tokenize() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/tokenize":
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json={"object": "list", "data": [{"id": "m"}]})

    client = OpenAIClient(
        "http://model.test/v1", "m", api_key="sk-test", transport=httpx.MockTransport(handler)
    )
    try:
        assert await client.tokenize("abc") is None
        assert await client.list_models() == ["m"]
    finally:
        await client.aclose()
    assert all(r.headers["authorization"] == "Bearer sk-test" for r in seen)


async def test_connection_refused_and_bad_base_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = OpenAIClient(f"http://127.0.0.1:{port}/v1", "m", retry=NO_WAIT)
    try:
        with pytest.raises(ModelConnectionError) as info:
            await client.chat(ASK)
        assert info.value.attempts == 3
    finally:
        await client.aclose()
    with pytest.raises(ModelUsageError, match="/v1"):
        OpenAIClient("http://127.0.0.1:8000")


async def test_not_openai_json_is_protocol_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text="<html>proxy</html>"))
    async with OpenAIClient("http://x.test/v1", "m", transport=transport) as client:
        with pytest.raises(ModelProtocolError, match="not JSON"):
            await client.chat(ASK)


async def test_thinking_budget_safety_net_cuts_stream(scripted_model) -> None:
    server = scripted_model(
        [
            ScriptedTurn(reasoning="word " * 400, content="late answer", latency=0.002),
            ScriptedTurn(reasoning="short", content="Paris"),
        ],
        chunk_chars=4,
    )
    request = ChatRequest(messages=[Message("user", "q")], thinking_token_budget=40)
    async with OpenAIClient(server.base_url, "scripted") as client:
        deltas, cut = await _stream(client, request)
        _, fine = await _stream(client, request)
    assert cut.thinking_budget_exhausted and cut.finish_reason == "length"
    assert cut.content == "" and 40 * 4 <= len(cut.reasoning) < 400 * 5
    assert _text(deltas, "content") == ""
    assert await asyncio.to_thread(server.wait_for_disconnect, 5.0)
    assert server.requests[0].body["thinking_token_budget"] == 40
    assert not fine.thinking_budget_exhausted and fine.content == "Paris"
