"""A failed run reaches the OpenAI route with the status its kind maps to: a request the
model rejected is the client's 4xx, a model that is down is 503 (real service, real
OpenAI client, scripted model server)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from testing.scripted import ScriptedTurn
from tests.test_service_support import ModelFactory, ThreadServer, service_settings

# Each test runs on the SQLite store and on Postgres (tests/fixtures/postgres.py).
pytestmark = pytest.mark.usefixtures("store_backend")

QUESTION = [{"role": "user", "content": "What is the capital of Freedonia?"}]
REJECTED = ScriptedTurn(status=400, error_message="'messages' is malformed for this model")


def _client(server: ThreadServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_a_request_the_model_rejects_is_a_400(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model(lambda _req: REJECTED)
    settings = service_settings(tmp_path, model.base_url)
    with ThreadServer(settings) as server, pytest.raises(openai.BadRequestError) as info:
        _client(server).chat.completions.create(model="thinkrag-research", messages=QUESTION)
    assert info.value.status_code == 400
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "model_request_rejected"
    assert "malformed for this model" in body["message"]


def test_a_model_that_is_down_is_a_503(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model([])
    model.stop()  # nothing listens at its address any more
    settings = service_settings(tmp_path, model.base_url)
    with ThreadServer(settings) as server, pytest.raises(openai.InternalServerError) as info:
        _client(server).chat.completions.create(model="thinkrag-research", messages=QUESTION)
    assert info.value.status_code == 503
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "model_unreachable"


def test_a_streamed_run_error_names_its_kind(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model(lambda _req: REJECTED)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as server:
        payload = {"model": "thinkrag-research", "messages": QUESTION, "stream": True}
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=payload) as r:
            frames = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    errors = [json.loads(f)["error"] for f in frames if f != "[DONE]" and "error" in f]
    assert errors and errors[0]["type"] == "model_request_rejected"
    assert frames[-1] == "[DONE]"
