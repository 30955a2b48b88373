"""Chat completions' `response_format` through the official `openai` client against a real
server and the scripted model: the answer comes as JSON matching the client's schema,
the schema reaches the model server as `response_format`, and a bad schema or a JSON
answer that breaks it is a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

MODEL = "thinkrag-research"
ASK = [{"role": "user", "content": "What is the capital of Freedonia?"}]


class Capital(BaseModel):
    capital: str
    country: str


def shaping(answer: dict[str, Any]):
    def turn(req: ScriptRequest) -> ScriptedTurn:
        if req.body.get("response_format"):
            return ScriptedTurn(content=json.dumps(answer))
        return research_turn(req)

    return turn


def _chats(model: ScriptedModelServer) -> list[dict[str, Any]]:
    return [r.body for r in model.requests if r.endpoint == "/v1/chat/completions"]


@pytest.fixture
def model(scripted_model: ModelFactory) -> ScriptedModelServer:
    return scripted_model(shaping({"capital": "Sylvania City", "country": "Freedonia"}))


@pytest.fixture
def client(tmp_path: Path, model: ScriptedModelServer):
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        yield openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_sdk_parse_gets_the_answer_as_the_pydantic_model(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    completion = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Capital)  # type: ignore[arg-type]
    message = completion.choices[0].message
    assert message.parsed == Capital(capital="Sylvania City", country="Freedonia")
    assert "Sources:" not in (message.content or "")  # the content is the JSON only
    sources = (message.model_extra or {})["sources"]
    assert sources[0]["doc_id"] == "freedonia"  # the sources still travel beside it
    shaping_call = _chats(model)[-1]
    sent = shaping_call["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Capital"
    assert set(sent["json_schema"]["schema"]["properties"]) == {"capital", "country"}
    assert "tools" not in shaping_call
    assert "Sylvania City [1]" in json.dumps(shaping_call["messages"])
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_streamed_json_answer_keeps_the_prose_in_the_reasoning(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=ASK, stream=True, response_format={"type": "json_object"}
    )  # type: ignore[call-overload]
    reasoning, content, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            reasoning += (choice.delta.model_extra or {}).get("reasoning") or ""
            content += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert json.loads(content) == {"capital": "Sylvania City", "country": "Freedonia"}
    assert "The capital of Freedonia is Sylvania City [1]." in reasoning
    assert finish == "stop"


def test_text_format_is_plain_prose(client: openai.OpenAI, model: ScriptedModelServer) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=ASK, response_format={"type": "text"}
    )
    assert "Sylvania City [1]" in (completion.choices[0].message.content or "")
    assert not any("response_format" in body for body in _chats(model))


@pytest.mark.parametrize(
    ("fmt", "param", "words"),
    [
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}},
            "response_format.json_schema.schema",
            "not a valid JSON Schema",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "x"}},
            "response_format.json_schema.schema",
            "is missing",
        ),
        ({"type": "yaml"}, "response_format.type", "'yaml' is not a format"),
    ],
    ids=["bad-schema", "no-schema", "bad-type"],
)
def test_a_bad_format_is_refused_before_the_run(
    client: openai.OpenAI, model: ScriptedModelServer, fmt: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=ASK, response_format=fmt)  # type: ignore[arg-type]
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == param and words in body["message"]
    assert _chats(model) == []


def test_a_json_answer_that_breaks_the_schema_is_a_502(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    model = scripted_model(shaping({"capital": 7}))
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Capital)  # type: ignore[arg-type]
        assert info.value.status_code == 502
        body = info.value.body
        assert isinstance(body, dict) and body["type"] == "answer_format_mismatch"
        assert "does not match the schema" in body["message"]
        # Streamed, the failure arrives as an error event the SDK raises.
        with pytest.raises(openai.APIError, match="does not match the schema"):
            for _ in client.chat.completions.create(
                model=MODEL, messages=ASK, stream=True,
                response_format={"type": "json_schema", "json_schema": {
                    "name": "c", "schema": Capital.model_json_schema()}},
            ):  # type: ignore[call-overload]  # fmt: skip
                pass


def test_prose_where_json_was_asked_is_a_502(tmp_path: Path, scripted_model: ModelFactory) -> None:
    def prose(req: ScriptRequest) -> ScriptedTurn:
        if req.body.get("response_format"):
            return ScriptedTurn(content="Sylvania City, I think.")
        return research_turn(req)

    with ThreadServer(service_settings(tmp_path, scripted_model(prose).base_url)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(
                model=MODEL, messages=ASK, response_format={"type": "json_object"}
            )
        assert info.value.status_code == 502 and "not JSON" in str(info.value.body)


def test_a_server_without_structured_outputs_is_asked_again_without_them(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    def turn(req: ScriptRequest) -> ScriptedTurn:
        if req.body.get("response_format"):
            return ScriptedTurn(status=400, error_message="response_format is not supported")
        if "Researched answer" in json.dumps(req.body["messages"]):
            return ScriptedTurn(content='{"capital": "Sylvania City", "country": "Freedonia"}')
        return research_turn(req)

    model = scripted_model(turn)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        completion = client.chat.completions.parse(
            model=MODEL, messages=ASK, response_format=Capital
        )  # type: ignore[arg-type]
    assert completion.choices[0].message.parsed == Capital(
        capital="Sylvania City", country="Freedonia"
    )
    retry = _chats(model)[-1]
    assert not retry.get("response_format") and '"capital"' in retry["messages"][-1]["content"]


def test_low_reasoning_effort_lowers_the_step_budget(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=ASK, reasoning_effort="minimal"
    )
    assert "Sylvania City" in (completion.choices[0].message.content or "")
    with_tools = [body for body in _chats(model) if body.get("tools")]
    assert len(with_tools) == 1  # one research step, then the closing answer without tools
