"""OpenAI-compatible extras through the official `openai` client against a real server:
parameters we cannot honour are refused by name, and `GET /v1/models/{id}` (JSON answer
formats, now honoured, are in tests/test_service_openai_formats.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

MODEL = "thinkrag-research"
ASK = [{"role": "user", "content": "What is the capital of Freedonia?"}]


@pytest.fixture
def service(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model(research_turn)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        yield server


@pytest.fixture
def client(service: ThreadServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0)


REFUSED: list[tuple[str, dict[str, Any]]] = [
    (
        "tools",
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
    ),
    ("tool_choice", {"tool_choice": "required"}),
    ("web_search_options", {"web_search_options": {"search_context_size": "low"}}),
    ("stop", {"stop": ["\n"]}),
    ("logprobs", {"logprobs": True}),
    ("top_logprobs", {"top_logprobs": 3}),
    ("logit_bias", {"logit_bias": {"50256": -100}}),
    ("n", {"n": 2}),
    ("modalities", {"modalities": ["text", "audio"]}),
]


@pytest.mark.parametrize(
    ("param", "kwargs"), REFUSED, ids=[f"{p}-{i}" for i, (p, _) in enumerate(REFUSED)]
)
def test_unhonoured_parameter_is_refused_by_name(
    client: openai.OpenAI, param: str, kwargs: dict[str, Any]
) -> None:
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model=MODEL, messages=ASK, stream=stream, **kwargs)  # type: ignore[call-overload]
        assert info.value.status_code == 400
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == param
        assert f"`{param}` is not supported" in body["message"]
        assert "remove" in body["message"] or "send" in body["message"]


def test_image_part_is_refused_naming_where_it_is(client: openai.OpenAI) -> None:
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])  # type: ignore[misc,list-item]
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "messages[0].content[1].type"
    assert "image_url" in body["message"]


def test_neutral_values_of_those_parameters_still_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=ASK,
        response_format={"type": "text"},
        logprobs=False,
        n=1,
        tool_choice="none",
        stop=[],
    )
    assert "Sylvania City" in (completion.choices[0].message.content or "")


def test_retrieve_model_by_id(client: openai.OpenAI) -> None:
    listed = client.models.list().data[0]
    got = client.models.retrieve(MODEL)
    assert got.id == MODEL and got.object == "model"
    assert got.created == listed.created and got.owned_by == "thinkrag"


def test_retrieve_unknown_model_is_404_in_the_openai_error_shape(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-4o")
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "model" and body["code"] == "not_found"
    assert MODEL in body["message"] and "gpt-4o" in body["message"]
