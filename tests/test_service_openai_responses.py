"""The OpenAI Responses API through the official `openai` client against a real server
and the scripted model: streamed and not, reasoning items, file-search calls, citations
as `file_citation` annotations, `previous_response_id` across a restart, JSON formats,
ownership, and a 400 naming each parameter we cannot honour."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import ResponseOutputMessage, ResponseReasoningItem

from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest
from tests import test_service_support as support
from tests.test_service_support import (
    ModelFactory,
    ThreadServer,
    free_port,
    research_turn,
    service_settings,
)

MODEL = "thinkrag-research"
ASK = "What is the capital of Freedonia?"
SCHEMA = {
    "type": "object",
    "properties": {"capital": {"type": "string"}, "country": {"type": "string"}},
    "required": ["capital", "country"],
    "additionalProperties": False,
}


def shaping_turn(req: ScriptRequest) -> ScriptedTurn:
    """The research script; a call that asks for a JSON format gets JSON."""
    if req.body.get("response_format"):
        return ScriptedTurn(
            content=json.dumps({"capital": "Sylvania City", "country": "Freedonia"})
        )
    return research_turn(req)


@pytest.fixture
def model(scripted_model: ModelFactory) -> ScriptedModelServer:
    return scripted_model(shaping_turn)


@pytest.fixture
def service(tmp_path: Path, model: ScriptedModelServer):
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        yield server


@pytest.fixture
def client(service: ThreadServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0)


def _chats(model: ScriptedModelServer) -> list[dict[str, Any]]:
    return [r.body for r in model.requests if r.endpoint == "/v1/chat/completions"]


def test_non_streamed_response_has_reasoning_search_and_cited_answer(
    client: openai.OpenAI,
) -> None:
    response = client.responses.create(model=MODEL, input=ASK)
    assert response.status == "completed" and response.object == "response"
    assert [item.type for item in response.output] == [
        "reasoning", "file_search_call", "reasoning", "message",
    ]  # fmt: skip
    thought = response.output[0]
    assert isinstance(thought, ResponseReasoningItem) and thought.content
    assert "look up the capital" in thought.content[0].text and thought.summary == []
    search = response.output[1]
    assert search.type == "file_search_call" and search.status == "completed"
    assert search.queries == ["capital of Freedonia"]
    assert search.results and search.results[0].file_id == "freedonia"
    assert response.output_text.startswith("The capital of Freedonia is Sylvania City [1].")
    message = response.output[-1]
    assert isinstance(message, ResponseOutputMessage) and message.status == "completed"
    [note] = message.content[0].annotations  # type: ignore[union-attr]
    assert note.type == "file_citation"
    assert (note.file_id, note.filename) == ("freedonia", "freedonia.md")
    assert response.output_text[: note.index].endswith("[1]")
    assert response.usage is not None and response.usage.total_tokens > 0
    assert response.usage.output_tokens_details.reasoning_tokens > 0
    assert client.responses.retrieve(response.id).model_dump() == response.model_dump()


def test_streamed_response_sends_the_events_in_order(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model=MODEL, input=ASK, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    for name in (
        "response.reasoning_text.delta",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.done",
    ):
        assert name in types, name
    # The reasoning finishes before the search starts, the search before the answer.
    assert types.index("response.reasoning_text.done") < types.index(
        "response.file_search_call.in_progress"
    )
    assert types.index("response.file_search_call.completed") < types.index(
        "response.output_text.delta"
    )
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert text == final.output_text and "Sylvania City [1]" in text
    assert client.responses.retrieve(final.id).output_text == text


def test_stream_helper_accumulates_the_same_response(client: openai.OpenAI) -> None:
    """The SDK's `responses.stream` rebuilds the response from the events: they must fit."""
    with client.responses.stream(model=MODEL, input=ASK, reasoning={"summary": "auto"}) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert "response.reasoning_text.delta" not in kinds
    thought = final.output[0]
    assert isinstance(thought, ResponseReasoningItem)
    assert thought.summary and "look up the capital" in thought.summary[0].text
    assert final.output_text == client.responses.retrieve(final.id).output_text


@pytest.mark.usefixtures("store_backend")  # on SQLite and on Postgres
def test_previous_response_id_continues_the_thread_across_a_restart(
    tmp_path: Path, model: ScriptedModelServer
) -> None:
    settings = service_settings(tmp_path, model.base_url)
    with ThreadServer(settings) as server:
        first_client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        first = first_client.responses.create(model=MODEL, input=ASK)
    with ThreadServer(settings.model_copy(update={"port": free_port()})) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        assert client.responses.retrieve(first.id).output_text == first.output_text
        before = len(_chats(model))
        second = client.responses.create(
            model=MODEL, input="And who founded it?", previous_response_id=first.id
        )
        assert second.status == "completed" and second.previous_response_id == first.id
        extra = second.model_extra or {}
        assert extra["thread_id"] == (first.model_extra or {})["thread_id"]
        # The model saw the first question and its answer on the continued thread.
        prompt = json.dumps(_chats(model)[before]["messages"])
        assert ASK in prompt and "Sylvania City" in prompt and "who founded it" in prompt


def test_two_replicas_on_one_postgres_share_responses(
    tmp_path: Path, model: ScriptedModelServer, postgres_url: str
) -> None:
    """Created on one replica, read and continued on the other (one Postgres store)."""
    support.DATABASE.url = postgres_url
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    try:
        one = service_settings(tmp_path / "one", model.base_url)
        two = service_settings(tmp_path / "two", model.base_url)
        with ThreadServer(one) as a, ThreadServer(two) as b:
            first = _client(a).responses.create(model=MODEL, input=ASK)
            other = _client(b)
            assert other.responses.retrieve(first.id).output_text == first.output_text
            second = other.responses.create(
                model=MODEL, input="And who founded it?", previous_response_id=first.id
            )
            assert second.status == "completed"
            assert (second.model_extra or {})["thread_id"] == (first.model_extra or {})["thread_id"]
            assert _client(a).responses.retrieve(second.id).output_text == second.output_text
    finally:
        support.DATABASE.url = None


def _client(server: ThreadServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)


def test_following_an_older_response_forks_with_its_conversation(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    first = client.responses.create(model=MODEL, input=ASK, instructions="Answer in French.")
    second = client.responses.create(
        model=MODEL, input="Say it again.", previous_response_id=first.id
    )
    before = len(_chats(model))
    fork = client.responses.create(model=MODEL, input="Spell it.", previous_response_id=first.id)
    thread = lambda r: (r.model_extra or {})["thread_id"]  # noqa: E731
    assert thread(second) == thread(first) != thread(fork)
    prompt = json.dumps(_chats(model)[before]["messages"])
    assert ASK in prompt and "Spell it." in prompt and "Say it again." not in prompt
    assert "Sylvania City" in prompt  # the first answer is part of the forked context
    assert "Answer in French." not in prompt  # instructions do not carry over, as on OpenAI


def test_json_schema_format_answers_matching_json(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    text = {"format": {"type": "json_schema", "name": "capital", "schema": SCHEMA, "strict": True}}
    response = client.responses.create(model=MODEL, input=ASK, text=text)  # type: ignore[arg-type]
    assert json.loads(response.output_text) == {"capital": "Sylvania City", "country": "Freedonia"}
    shaping = _chats(model)[-1]
    assert shaping["response_format"]["type"] == "json_schema"
    assert shaping["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "Sylvania City [1]" in json.dumps(shaping["messages"])  # built from the cited answer
    # The cited prose stays visible as reasoning; the JSON is the message.
    assert "Sylvania City [1]" in response.output[-2].content[0].text  # type: ignore[union-attr]
    streamed = list(client.responses.create(model=MODEL, input=ASK, text=text, stream=True))  # type: ignore[arg-type]
    assert streamed[-1].type == "response.completed"
    assert json.loads(streamed[-1].response.output_text)["capital"] == "Sylvania City"  # type: ignore[union-attr]


def test_a_json_answer_that_breaks_the_schema_is_a_clear_error(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    def wrong(req: ScriptRequest) -> ScriptedTurn:
        if req.body.get("response_format"):
            return ScriptedTurn(content=json.dumps({"capital": 7}))
        return research_turn(req)

    with ThreadServer(service_settings(tmp_path, scripted_model(wrong).base_url)) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0)
        text = {"format": {"type": "json_schema", "name": "capital", "schema": SCHEMA}}
        with pytest.raises(openai.APIStatusError) as info:
            client.responses.create(model=MODEL, input=ASK, text=text)  # type: ignore[arg-type]
        assert info.value.status_code == 502
        body = info.value.body
        assert isinstance(body, dict) and body["type"] == "answer_format_mismatch"
        assert "does not match the schema" in body["message"]
        events = list(client.responses.create(model=MODEL, input=ASK, text=text, stream=True))  # type: ignore[arg-type]
        assert events[-1].type == "response.failed"
        failed = events[-1].response  # type: ignore[union-attr]
        assert failed.status == "failed" and "does not match" in failed.error.message  # type: ignore[union-attr]
        assert client.responses.retrieve(failed.id).status == "failed"


def test_an_invalid_schema_is_refused_before_the_run(
    client: openai.OpenAI, model: ScriptedModelServer
) -> None:
    text = {"format": {"type": "json_schema", "name": "x", "schema": {"type": "nonsense"}}}
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=MODEL, input=ASK, text=text)  # type: ignore[arg-type]
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "text.format.schema"
    assert "not a valid JSON Schema" in body["message"]
    assert _chats(model) == []


def test_store_false_is_neither_readable_nor_continuable(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input=ASK, store=False)
    assert response.status == "completed" and "Sylvania City" in response.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model=MODEL, input="more", previous_response_id=response.id)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "previous_response_id"


def test_delete_then_read_is_404(client: openai.OpenAI) -> None:
    response = client.responses.create(model=MODEL, input=ASK)
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_another_keys_response_is_invisible(tmp_path: Path, model: ScriptedModelServer) -> None:
    settings = service_settings(tmp_path, model.base_url, api_keys="alpha,beta")
    with ThreadServer(settings) as server:
        alpha = openai.OpenAI(base_url=server.url + "/v1", api_key="alpha", max_retries=0)
        beta = openai.OpenAI(base_url=server.url + "/v1", api_key="beta", max_retries=0)
        mine = alpha.responses.create(model=MODEL, input=ASK)
        with pytest.raises(openai.NotFoundError):
            beta.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            beta.responses.create(model=MODEL, input="more", previous_response_id=mine.id)
        with pytest.raises(openai.NotFoundError):
            beta.responses.delete(mine.id)
        assert alpha.responses.retrieve(mine.id).id == mine.id
        anonymous = httpx.get(f"{server.url}/v1/responses/{mine.id}")
        assert anonymous.status_code == 401


REFUSED: list[tuple[str, dict[str, Any]]] = [
    ("tools", {"tools": [{"type": "function", "name": "f", "parameters": {}}]}),
    ("tools", {"tools": [{"type": "web_search"}]}),
    ("tool_choice", {"tool_choice": "required"}),
    ("background", {"background": True}),
    ("include[0]", {"include": ["reasoning.encrypted_content"]}),
    ("max_output_tokens", {"max_output_tokens": 100}),
    ("top_logprobs", {"top_logprobs": 2}),
    ("conversation", {"conversation": "conv_123"}),
    ("prompt", {"prompt": {"id": "pmpt_1"}}),
    (
        "input[0].type",
        {"input": [{"type": "function_call_output", "call_id": "c1", "output": "42"}]},
    ),
    (
        "input[0].content[1].type",
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                    ],
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(
    ("param", "kwargs"), REFUSED, ids=[f"{p}-{i}" for i, (p, _) in enumerate(REFUSED)]
)
def test_unhonoured_parameter_is_refused_by_name(
    client: openai.OpenAI, model: ScriptedModelServer, param: str, kwargs: dict[str, Any]
) -> None:
    args = {"input": ASK, **kwargs}
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model=MODEL, stream=stream, **args)
        assert info.value.status_code == 400
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == param
        assert f"`{param}` is not supported" in body["message"]
    assert _chats(model) == []  # refused before any run started


def test_neutral_values_and_honoured_extras_still_answer(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        instructions="Answer briefly.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": ASK}]}],
        tool_choice="auto",
        tools=[],
        include=["file_search_call.results"],
        metadata={"ticket": "42"},
        max_tool_calls=3,
        reasoning={"effort": "low"},
    )
    assert response.status == "completed" and "Sylvania City" in response.output_text
    assert response.metadata == {"ticket": "42"} and response.instructions == "Answer briefly."
    assert response.reasoning is not None and response.reasoning.effort == "low"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="gpt-5", input=ASK)
    assert isinstance(info.value.body, dict) and info.value.body["param"] == "model"


def test_input_items_list_the_messages_sent(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "Hello."},
            {"role": "assistant", "content": "Hi, what would you like to know?"},
            {"role": "user", "content": ASK},
        ],
    )
    items = client.responses.input_items.list(response.id)
    texts = [item.content[0].text for item in items.data]  # type: ignore[union-attr]
    assert texts == [ASK, "Hi, what would you like to know?", "Hello."]  # newest first
    assert [item.role for item in items.data] == ["user", "assistant", "user"]  # type: ignore[union-attr]
    oldest = client.responses.input_items.list(response.id, order="asc", limit=1)
    assert oldest.has_more and oldest.data[0].content[0].text == "Hello."  # type: ignore[union-attr]


def test_a_failed_run_is_its_status_or_a_failed_event(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    rejected = ScriptedTurn(status=400, error_message="'messages' is malformed for this model")
    model = scripted_model(lambda _req: rejected)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        client = _client(server)
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model=MODEL, input=ASK)
        body = info.value.body
        assert isinstance(body, dict) and body["type"] == "model_request_rejected"
        events = list(client.responses.create(model=MODEL, input=ASK, stream=True))
        assert events[-1].type == "response.failed"
        failed = events[-1].response  # type: ignore[union-attr]
        assert failed.status == "failed" and failed.error is not None
        assert "malformed for this model" in failed.error.message
        assert client.responses.retrieve(failed.id).status == "failed"


def test_a_client_leaving_a_stream_cancels_the_run(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    def slow(req: ScriptRequest) -> ScriptedTurn:
        return ScriptedTurn(reasoning="thinking " * 200, content="late", latency=0.05)

    with ThreadServer(service_settings(tmp_path, scripted_model(slow).base_url)) as server:
        payload = {"model": MODEL, "input": ASK, "stream": True}
        response_id = None
        with httpx.stream("POST", server.url + "/v1/responses", json=payload, timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and "response.created" in line:
                    response_id = json.loads(line[6:])["response"]["id"]
                if "response.reasoning_text.delta" in line:
                    break  # hang up mid-thought
        assert response_id is not None
        client = _client(server)
        deadline = time.monotonic() + 20
        while (got := client.responses.retrieve(response_id)).status == "in_progress":
            assert time.monotonic() < deadline, "the run was not cancelled"
            time.sleep(0.1)
        assert got.status == "cancelled" and got.error is not None


def test_sdk_parse_reads_the_json_answer_into_a_pydantic_model(client: openai.OpenAI) -> None:
    from pydantic import BaseModel

    class Capital(BaseModel):
        capital: str
        country: str

    parsed = client.responses.parse(model=MODEL, input=ASK, text_format=Capital)
    assert parsed.output_parsed == Capital(capital="Sylvania City", country="Freedonia")
