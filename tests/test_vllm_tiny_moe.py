"""The OpenAI client against a real vLLM CPU server with real parsers (tiny random Qwen3-MoE).

The model's weights are random, so the tests assert protocol properties that hold for any
output: where reasoning and content arrive, that constrained output obeys its schema, how
stop strings end a completion, what usage and /metrics report.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.llm.client import OpenAIClient
from agent.llm.types import ChatRequest, ChatResult, Delta, Message

# One event loop for the module: the client fixture lives in the session loop.
pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

QUESTION = (Message("user", "Which river runs through Paris? Search first."),)
SEARCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {"type": "string", "maxLength": 40},
        "k": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "required": ["query", "k"],
    "additionalProperties": False,
}
SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the documents.",
        "parameters": SEARCH_SCHEMA,
    },
}
ACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["search", "answer"]},
        "text": {"type": "string", "maxLength": 60},
    },
    "required": ["action", "text"],
    "additionalProperties": False,
}


def assert_matches(value: Any, schema: dict[str, Any]) -> None:
    """The subset of JSON Schema used above, checked strictly."""
    assert isinstance(value, dict), value
    props = schema["properties"]
    assert set(schema["required"]) <= set(value), value
    assert set(value) <= set(props), value
    for key, item in value.items():
        rule = props[key]
        if rule["type"] == "string":
            assert isinstance(item, str)
            assert len(item) <= rule.get("maxLength", 10**9)
            assert item in rule.get("enum", [item])
            assert not re.search(r"[\x00-\x1f]", item), "raw control character in a string"
        elif rule["type"] == "integer":
            assert isinstance(item, int) and not isinstance(item, bool)
            assert rule["minimum"] <= item <= rule["maximum"]


@pytest.fixture
async def client(vllm_tiny_moe: str) -> AsyncIterator[OpenAIClient]:
    async with OpenAIClient(vllm_tiny_moe) as c:
        yield c


async def collect(client: OpenAIClient, request: ChatRequest) -> tuple[list[Delta], ChatResult]:
    deltas: list[Delta] = []
    async for item in client.stream_chat(request):
        if isinstance(item, Delta):
            deltas.append(item)
        else:
            return deltas, item
    raise AssertionError("stream ended without a ChatResult")


async def test_models_lists_the_served_name(client: OpenAIClient) -> None:
    assert await client.list_models() == ["tiny-moe"]


async def test_stream_gives_reasoning_then_content(client: OpenAIClient) -> None:
    request = ChatRequest(
        QUESTION, max_tokens=96, temperature=1.0, seed=11, thinking_token_budget=24
    )
    deltas, result = await collect(client, request)
    kinds = [d.kind for d in deltas]
    assert "reasoning" in kinds and "content" in kinds, kinds
    first_content = kinds.index("content")
    assert "reasoning" not in kinds[first_content:], "reasoning arrived after the content began"
    assert result.reasoning == "".join(d.text for d in deltas if d.kind == "reasoning")
    assert result.content == "".join(d.text for d in deltas if d.kind == "content")
    # (The content may repeat a stray `</think>`: the random model emits it anywhere, and
    # vLLM's streaming path passes such duplicates through.)
    assert "</think>" not in result.reasoning
    # The budget makes vLLM force </think>: reasoning stops at 24 tokens.
    assert 0 < result.usage.reasoning_tokens <= 25
    assert result.usage.completion_tokens > result.usage.reasoning_tokens
    assert result.usage.prompt_tokens > 10


async def test_thinking_can_be_switched_off(client: OpenAIClient) -> None:
    request = ChatRequest(
        QUESTION,
        max_tokens=12,
        temperature=1.0,
        seed=3,
        chat_template_kwargs={"enable_thinking": False},
    )
    result = await client.chat(request)
    assert result.reasoning == ""
    assert result.content.strip()
    assert result.usage.reasoning_tokens == 0


async def test_seeded_requests_repeat(client: OpenAIClient) -> None:
    request = ChatRequest(QUESTION, max_tokens=40, temperature=1.0, seed=5)
    first, second = await client.chat(request), await client.chat(request)
    assert (first.reasoning, first.content) == (second.reasoning, second.content)
    assert first.reasoning  # random reasoning, but the same for the same seed


@pytest.mark.parametrize("stream", [False, True])
async def test_required_tool_calls_match_the_schema(client: OpenAIClient, stream: bool) -> None:
    request = ChatRequest(
        QUESTION,
        max_tokens=256,
        temperature=1.0,
        seed=21,
        tools=(SEARCH_TOOL,),
        tool_choice="required",
    )
    if stream:
        deltas, result = await collect(client, request)
        assert any(d.kind == "tool_call" for d in deltas)
    else:
        result = await client.chat(request)
    assert result.finish_reason == "tool_calls"
    assert result.tool_calls, result
    for call in result.tool_calls:
        assert call.name == "search"
        assert call.id
        assert_matches(json.loads(call.arguments), SEARCH_SCHEMA)


async def test_response_format_json_schema(client: OpenAIClient) -> None:
    request = ChatRequest(
        QUESTION,
        max_tokens=256,
        temperature=1.0,
        seed=8,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "action", "schema": ACTION_SCHEMA, "strict": True},
        },
    )
    result = await client.chat(request)
    assert result.reasoning  # the constraint starts after </think>
    assert_matches(json.loads(result.content), ACTION_SCHEMA)
    assert result.finish_reason == "stop"


@pytest.mark.parametrize("seed", [1, 2])
async def test_structured_outputs_json_and_choice(client: OpenAIClient, seed: int) -> None:
    as_json = await client.chat(
        ChatRequest(
            QUESTION,
            max_tokens=256,
            temperature=1.0,
            seed=seed,
            structured_outputs={"json": ACTION_SCHEMA},
        )
    )
    assert_matches(json.loads(as_json.content), ACTION_SCHEMA)
    as_choice = await client.chat(
        ChatRequest(
            QUESTION,
            max_tokens=256,
            temperature=1.0,
            seed=seed,
            structured_outputs={"choice": ["search", "answer"]},
        )
    )
    assert as_choice.content in ("search", "answer")


@pytest.mark.parametrize("include", [True, False])
async def test_completion_stops_on_stop_string(client: OpenAIClient, include: bool) -> None:
    # 'e' is common enough that any output hits it; what matters is where the text ends.
    result = await client.complete(
        "<|im_start|>user\nSearch the river.<|im_end|>\n<|im_start|>assistant\n",
        max_tokens=128,
        stop=["e"],
        include_stop_str_in_output=include,
        temperature=1.0,
        seed=4,
    )
    assert result.finish_reason == "stop"
    assert result.stop_reason == "e"
    body = result.text[:-1] if include else result.text
    assert "e" not in body
    assert result.text.endswith("e") is include
    assert result.usage.completion_tokens > 0


def counter(metrics: str, name: str) -> float:
    """Sum a Prometheus counter over its label sets (`name` or `name_total`)."""
    total = 0.0
    for line in metrics.splitlines():
        metric = re.split(r"[{\s]", line, maxsplit=1)[0]
        if metric in (name, f"{name}_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_prefix_cache_reuse_when_the_prompt_grows(client: OpenAIClient) -> None:
    # A long, unique system prompt so the first request cannot hit blocks cached by others.
    words = " ".join(f"passage{i} mentions river {i * 7 % 13}." for i in range(120))
    system = Message("system", f"Context for run prefix-test: {words}")
    first_messages = (system, Message("user", "Where is the river?"))
    first = await client.chat(ChatRequest(first_messages, max_tokens=8, temperature=1.0, seed=1))
    before = await client.metrics_text()
    follow_up = (
        *first_messages,
        Message("assistant", first.content, reasoning=first.reasoning or None),
        Message("user", "And the next one?"),
    )
    second = await client.chat(ChatRequest(follow_up, max_tokens=8, temperature=1.0, seed=1))
    after = await client.metrics_text()
    hits = counter(after, "vllm:prefix_cache_hits") - counter(before, "vllm:prefix_cache_hits")
    queries = counter(after, "vllm:prefix_cache_queries") - counter(
        before, "vllm:prefix_cache_queries"
    )
    assert queries >= second.usage.prompt_tokens - 1
    # Everything up to the end of the first prompt's last full KV block is reused.
    assert hits >= first.usage.prompt_tokens // 2, (hits, first.usage.prompt_tokens)
    assert second.usage.cached_tokens == hits


async def test_launcher_reports_an_early_exit_with_the_log_tail(vllm_tiny_moe: str) -> None:
    # Depends on the session server only so the model folder is already built.
    from serving.models.launcher import LaunchError, VLLMServer
    from serving.models.profiles import get_profile

    server = VLLMServer(get_profile("tiny-moe"), extra_args=("--no-such-flag",))
    with pytest.raises(LaunchError) as info:
        await asyncio.to_thread(server.start, 300)
    assert "exited with code" in str(info.value)
    assert "no-such-flag" in str(info.value)  # vLLM's own complaint, from the log tail
    assert server.pid is None
