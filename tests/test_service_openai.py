"""The OpenAI-compatible API through the official `openai` client, against a real server."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

# Each test runs on the SQLite store and on Postgres (tests/fixtures/postgres.py).
pytestmark = pytest.mark.usefixtures("store_backend")


@pytest.fixture
def service(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model(research_turn)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        yield server


def test_models_lists_the_research_agent(service: ThreadServer) -> None:
    client = openai.OpenAI(base_url=service.url + "/v1", api_key="unused")
    assert [m.id for m in client.models.list()] == ["thinkrag-research"]


def test_non_streaming_answer_carries_sources(service: ThreadServer) -> None:
    client = openai.OpenAI(base_url=service.url + "/v1", api_key="unused")
    completion = client.chat.completions.create(
        model="thinkrag-research",
        messages=[{"role": "user", "content": "What is the capital of Freedonia?"}],
    )
    message = completion.choices[0].message
    assert "Sylvania City" in (message.content or "")
    assert "Sources:\n[1] Freedonia" in (message.content or "")
    sources = (message.model_extra or {})["sources"]
    assert sources[0]["number"] == 1 and sources[0]["doc_id"] == "freedonia"
    assert "capital" in (message.model_extra or {})["reasoning"]
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_streaming_sends_reasoning_then_content(service: ThreadServer) -> None:
    client = openai.OpenAI(base_url=service.url + "/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="thinkrag-research",
        messages=[{"role": "user", "content": "What is the capital of Freedonia?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    reasoning, content, finish, sources, usage = "", "", None, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            reasoning += extra.get("reasoning") or ""
            content += choice.delta.content or ""
            if choice.finish_reason:
                finish = choice.finish_reason
                sources = (choice.model_extra or {}).get("sources")
    assert "look up the capital" in reasoning
    assert "[search" in reasoning  # tool activity shows as live progress
    assert content.startswith("The capital of Freedonia is Sylvania City [1].")
    assert content.endswith("[1] Freedonia (freedonia.md)")
    assert finish == "stop"
    assert sources and sources[0]["title"] == "Freedonia"
    assert usage is not None and usage.total_tokens > 0


def test_unknown_model_is_404_with_a_fix(service: ThreadServer) -> None:
    client = openai.OpenAI(base_url=service.url + "/v1", api_key="unused")
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert "thinkrag-research" in str(info.value)
