"""Hostile and careless inputs get a 4xx naming the field, never a 500 (issue 12: D1, D7,
D10, D11, D25), against a real server and its real SQLite database."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

JSON = {"content-type": "application/json"}
SURROGATE = b'"\\ud83d"'  # a lone high surrogate, as a JSON escape


def _raw(url: str, body: bytes) -> httpx.Response:
    return httpx.post(url, content=body, headers=JSON, timeout=30)


@pytest.fixture
def server(tmp_path: Path, scripted_model: ModelFactory):
    model = scripted_model(research_turn)
    with ThreadServer(service_settings(tmp_path, model.base_url)) as srv:
        yield srv


def _field(r: httpx.Response) -> str:
    assert r.status_code == 422, (r.status_code, r.text)
    return str(r.json()["error"]["param"])


def test_lone_surrogates_are_refused_by_field_and_listings_stay_up(server: ThreadServer) -> None:
    url = server.url
    r = _raw(url + "/threads", b'{"metadata": {"note": ' + SURROGATE + b"}}")
    assert _field(r) == "metadata.note"
    assert "surrogate" in r.json()["error"]["message"]
    thread = httpx.post(url + "/threads", json={}).json()["thread_id"]
    run_body = b'{"assistant_id": "research", "input": {"question": "capital?"}, "metadata": '
    r = _raw(f"{url}/threads/{thread}/runs", run_body + b'{"tag": ' + SURROGATE + b"}}")
    assert _field(r) == "metadata.tag"
    question = b'{"assistant_id": "research", "input": {"question": ' + SURROGATE + b"}}"
    r = _raw(f"{url}/threads/{thread}/runs", question)
    assert _field(r) == "input.question"
    assert _field(_raw(url + "/v1/runs", b'{"question": "a' + SURROGATE[1:] + b"}")) == "question"
    chat = b'{"model": "thinkrag-research", "messages": [{"role": "user", "content": '
    assert _field(_raw(url + "/v1/chat/completions", chat + SURROGATE + b"}]}")) == (
        "messages.0.content"
    )
    assert _field(_raw(url + "/threads", b'{"metadata": {"a\\u0000b": 1}}')) == "metadata.a\x00b"
    # Nothing was stored, so the listings that used to fail for good still answer.
    assert httpx.post(url + "/threads/search", json={}).status_code == 200
    assert httpx.get(f"{url}/threads/{thread}/runs").status_code == 200
    assert httpx.get(f"{url}/threads/{thread}/runs").json() == []


def test_rows_stored_before_the_check_are_read_tolerantly(server: ThreadServer) -> None:
    url = server.url
    thread = httpx.post(url + "/threads", json={"metadata": {"k": "v"}}).json()["thread_id"]
    body = {"assistant_id": "research", "input": {"question": "capital?"}}
    run = httpx.post(f"{url}/threads/{thread}/runs/wait", json=body)
    assert run.status_code == 200
    # What an older release let in: a lone surrogate inside stored JSON text.
    db = sqlite3.connect(server.settings.db_path)
    db.execute("UPDATE threads SET metadata = ? WHERE thread_id = ?", ('{"k": "\\ud83d"}', thread))
    db.execute("UPDATE runs SET metadata = ? WHERE thread_id = ?", ('{"m": "x\\udc00"}', thread))
    db.commit()
    db.close()
    found = httpx.post(url + "/threads/search", json={})
    assert found.status_code == 200
    assert [t["metadata"] for t in found.json() if t["thread_id"] == thread] == [{"k": "\ufffd"}]
    runs = httpx.get(f"{url}/threads/{thread}/runs")
    assert runs.status_code == 200 and runs.json()[0]["metadata"] == {"m": "x\ufffd"}


def test_non_latin1_thread_id_creates_one_run_with_encoded_headers(server: ThreadServer) -> None:
    url, thread = server.url, "スレッド-ü-€"
    body = {"assistant_id": "research", "input": {"question": "capital?"},
            "if_not_exists": "create"}  # fmt: skip
    r = httpx.post(f"{url}/threads/{quote(thread)}/runs", json=body)
    assert r.status_code == 200, r.text
    run_id = r.json()["run_id"]
    assert r.headers["content-location"] == f"/threads/{quote(thread, safe='')}/runs/{run_id}"
    rejoin = httpx.get(url + r.headers["location"], timeout=30)  # the header is a usable path
    assert rejoin.status_code == 200 and "event: end" in rejoin.text
    with httpx.stream("POST", f"{url}/threads/{quote(thread)}/runs/stream", json=body) as s:
        assert s.status_code == 200 and quote(thread, safe="") in s.headers["location"]
        s.read()
    runs = httpx.get(f"{url}/threads/{quote(thread)}/runs").json()
    assert len(runs) == 2 and {x["thread_id"] for x in runs} == {thread}


def test_one_thread_id_limit_everywhere(server: ThreadServer) -> None:
    url, long_id = server.url, "t" * 129
    assert _field(httpx.post(url + "/v1/runs", json={"question": "q", "thread_id": long_id})) == (
        "thread_id"
    )
    assert _field(httpx.post(url + "/threads", json={"thread_id": long_id})) == "thread_id"
    body = {"assistant_id": "research", "input": {"question": "q"}, "if_not_exists": "create"}
    assert _field(httpx.post(f"{url}/threads/{long_id}/runs", json=body)) == "thread_id"
    assert _field(httpx.post(url + "/v1/runs", json={"question": "q", "thread_id": " x"})) == (
        "thread_id"
    )
    ok = httpx.post(url + "/v1/runs", json={"question": "q", "thread_id": "t" * 128})
    assert ok.status_code == 202


def test_wrong_types_and_huge_integers_are_4xx(server: ThreadServer) -> None:
    url = server.url
    thread = httpx.post(url + "/threads", json={}).json()["thread_id"]
    base = {"assistant_id": "research", "input": {"question": "capital?"}}
    r = httpx.post(f"{url}/threads/{thread}/runs", json={**base, "context": {"max_steps": "x"}})
    assert _field(r) == "context.max_steps"
    r = httpx.post(f"{url}/threads/{thread}/runs",
                   json={**base, "config": {"configurable": {"top_k": [1]}}})  # fmt: skip
    assert _field(r) == "config.configurable.top_k"
    r = httpx.post(f"{url}/threads/{thread}/runs", json={**base, "config": {"configurable": 3}})
    assert _field(r) == "config.configurable"
    assert _field(httpx.post(f"{url}/threads/{thread}/history", json={"limit": "ten"})) == "limit"
    assert httpx.post(f"{url}/threads/{thread}/history", content=b"{nope",
                      headers=JSON).status_code == 422  # fmt: skip
    assert httpx.post(f"{url}/threads/{thread}/history").status_code == 200
    assert httpx.post(f"{url}/threads/{thread}/history", json={"limit": 2}).status_code == 200
    assert _field(httpx.post(url + "/threads/search", json={"offset": 2**63})) == "offset"
    assert httpx.post(url + "/threads/search", json={"offset": 2**63 - 1}).json() == []
    assert _field(httpx.get(f"{url}/threads/{thread}/runs", params={"offset": 2**63})) == "offset"
    run = httpx.post(url + "/v1/runs", json={"question": "capital?"}).json()["run_id"]
    for bad in (str(2**63), "-1", "1.99999999999999999999"):
        r = httpx.get(f"{url}/v1/runs/{run}/events", headers={"Last-Event-ID": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == "Last-Event-ID", bad
    r = httpx.get(f"{url}/v1/runs/{run}/events", headers={"Last-Event-ID": str(2**63 - 1)})
    assert r.status_code == 200 and r.text.rstrip().endswith("}")  # just the end frame


def test_blank_question_is_422_not_a_failed_run(server: ThreadServer) -> None:
    url = server.url
    for blank in (" ", "\n\t ", "\u3000"):
        r = httpx.post(url + "/v1/runs", json={"question": blank})
        assert _field(r) == "question" and "blank" in r.json()["error"]["message"]
    body = {"assistant_id": "research", "input": {"question": "  "}}
    assert _field(httpx.post(url + "/runs", json=body)) == "input"
    time.sleep(0.1)
    db = sqlite3.connect(server.settings.db_path)
    (runs,) = db.execute("SELECT count(*) FROM runs").fetchone()
    db.close()
    assert runs == 0
    assert json.loads(httpx.get(url + "/healthz").text)["status"] == "ok"
