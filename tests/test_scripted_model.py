"""The scripted model server speaks vLLM's OpenAI wire protocol (checked with plain httpx)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest


def _sse_payloads(text: str) -> list[Any]:
    out: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_models_and_nonstream_chat(scripted_model) -> None:
    server = scripted_model(
        [ScriptedTurn(reasoning="think hard", content="Paris.", cached_tokens=3)], model="m1"
    )
    models = httpx.get(f"{server.base_url}/models").json()
    assert [m["id"] for m in models["data"]] == ["m1"]

    body = {"model": "m1", "messages": [{"role": "user", "content": "Capital of France?"}]}
    resp = httpx.post(f"{server.base_url}/chat/completions", json=body)
    assert resp.status_code == 200
    data = resp.json()
    choice = data["choices"][0]
    assert choice["message"]["content"] == "Paris."
    assert choice["message"]["reasoning"] == "think hard"
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] == len("Capital of France?") // 4 + 1
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 3
    assert usage["prompt_tokens_details"]["cached_tokens"] == 3
    assert server.requests[-1].endpoint == "/v1/chat/completions"
    assert server.requests[-1].body["messages"][0]["content"] == "Capital of France?"


def test_legacy_field_and_think_tags() -> None:
    script = [
        ScriptedTurn(reasoning="r1", content="a1", reasoning_field="reasoning_content"),
        ScriptedTurn(reasoning="r2", content="a2", think_in_content=True),
        ScriptedTurn(reasoning="r3", unclosed_think=True),
        ScriptedTurn(reasoning="r4", content="a4", omit_think_open=True),
    ]
    with ScriptedModelServer(script) as server:
        msgs = [
            httpx.post(f"{server.base_url}/chat/completions", json={"messages": []}).json()[
                "choices"
            ][0]["message"]
            for _ in script
        ]
    assert msgs[0]["reasoning_content"] == "r1" and "reasoning" not in msgs[0]
    assert msgs[1]["content"] == "<think>r2</think>a2" and msgs[1]["reasoning"] is None
    assert msgs[2]["content"] == "<think>r3"
    assert msgs[3]["content"] == "r4</think>a4"


def test_streamed_chat_with_tool_calls_and_usage(scripted_model) -> None:
    args = '{"query": "Eiffel tower height"}'
    server = scripted_model(
        [ScriptedTurn(reasoning="need to search", tool_calls=(("search", args),))], chunk_chars=5
    )
    body = {"messages": [], "stream": True, "stream_options": {"include_usage": True}}
    resp = httpx.post(f"{server.base_url}/chat/completions", json=body)
    events = _sse_payloads(resp.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning") or "" for c in chunks[:-1])
    assert reasoning == "need to search"
    pieces = [
        tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert pieces[0]["id"].startswith("call_") and pieces[0]["function"]["name"] == "search"
    assert all("id" not in p for p in pieces[1:]) and len(pieces) > 3
    assert "".join(p["function"].get("arguments", "") for p in pieces) == args
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finals[0]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_completions_stop_strings(scripted_model) -> None:
    text = "I should look up <search>tower height</search> then answer"
    server = scripted_model([ScriptedTurn(text=text)] * 3)
    url = f"{server.base_url}/completions"
    plain = httpx.post(url, json={"prompt": "Q:", "stop": ["</search>", "then"]}).json()
    assert plain["choices"][0]["text"] == "I should look up <search>tower height"
    assert plain["choices"][0]["finish_reason"] == "stop"
    assert plain["choices"][0]["stop_reason"] == "</search>"
    body = {"prompt": "Q:", "stop": ["</search>"], "include_stop_str_in_output": True}
    kept = httpx.post(url, json=body).json()
    assert kept["choices"][0]["text"].endswith("</search>")
    streamed = httpx.post(url, json={**body, "stream": True})
    events = _sse_payloads(streamed.text)
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == kept["choices"][0]["text"]
    assert events[-2]["choices"][0]["stop_reason"] == "</search>"


def test_errors_exhaustion_and_unknown_model(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(status=429, retry_after=0.5, error_message="slow down")])
    url = f"{server.base_url}/chat/completions"
    limited = httpx.post(url, json={"messages": []})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "0.5"
    assert limited.json()["error"]["message"] == "slow down"
    exhausted = httpx.post(url, json={"messages": []})
    assert (
        exhausted.status_code == 500 and "script exhausted" in exhausted.json()["error"]["message"]
    )
    missing = httpx.post(url, json={"model": "other", "messages": []})
    assert missing.status_code == 404


def test_cut_stream_breaks_chunked_body(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(content="x" * 100, cut_stream_after_chunks=3)])
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{server.base_url}/chat/completions", json={"messages": [], "stream": True})


def test_callable_script_sees_request(scripted_model) -> None:
    def script(req: ScriptRequest) -> ScriptedTurn:
        return ScriptedTurn(content=f"echo {len(req.body['messages'])}")

    server = scripted_model(script)
    body = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    got = httpx.post(f"{server.base_url}/chat/completions", json=body).json()
    assert got["choices"][0]["message"]["content"] == "echo 2"


def test_tokenize_metrics_and_disconnect(scripted_model) -> None:
    server = scripted_model([ScriptedTurn(content="y" * 400, latency=0.02)], chunk_chars=4)
    tok = httpx.post(f"{server.root_url}/tokenize", json={"prompt": "hello world, again"}).json()
    assert tok["count"] == 4 and len(tok["tokens"]) == 4
    metrics = httpx.get(f"{server.root_url}/metrics").text
    assert "vllm:prompt_tokens_total" in metrics
    with (
        httpx.Client() as client,
        client.stream(
            "POST", f"{server.base_url}/chat/completions", json={"messages": [], "stream": True}
        ) as resp,
    ):
        next(resp.iter_lines())
    assert server.wait_for_disconnect(timeout=5)
    assert server.requests[-1].disconnected and not server.requests[-1].completed


def test_first_byte_delay_and_latency() -> None:
    with ScriptedModelServer([ScriptedTurn(content="ok", first_byte_delay=0.3)]) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.base_url}/chat/completions", json={"messages": []}, timeout=0.1)
        time.sleep(0.3)  # let the server finish the abandoned request before stopping
