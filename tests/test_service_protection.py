"""Auth, limits and every error status, against a real server."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from serving.http.app import create_app
from serving.settings import Settings, SettingsError
from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

Q = {"model": "thinkrag-research", "messages": [{"role": "user", "content": "capital?"}]}
JSON = {"content-type": "application/json"}


def test_refuses_public_host_without_keys(tmp_path: Path) -> None:
    settings = Settings(host="0.0.0.0", db_path=tmp_path / "db.sqlite")
    with pytest.raises(SettingsError, match="THINKRAG_API_KEYS"):
        create_app(settings)
    Settings(host="0.0.0.0", api_keys=["k"]).check_exposure()  # keys make it fine
    Settings(host="0.0.0.0", allow_unauthenticated=True).check_exposure()


def test_api_keys_bearer_and_x_api_key(tmp_path: Path, scripted_model: ModelFactory) -> None:
    model = scripted_model(research_turn)
    settings = service_settings(tmp_path, model.base_url, api_keys="alpha,beta")
    with ThreadServer(settings) as server:
        r = httpx.get(server.url + "/v1/models")
        assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized"
        assert "Authorization: Bearer" in r.json()["error"]["message"]
        r = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        ok = httpx.get(server.url + "/v1/models", headers={"Authorization": "Bearer beta"})
        assert ok.status_code == 200
        assert httpx.post(server.url + "/assistants/search", json={},
                          headers={"x-api-key": "alpha"}).status_code == 200  # fmt: skip
        assert httpx.get(server.url + "/healthz").status_code == 200  # probes stay open


def test_error_statuses(tmp_path: Path, scripted_model: ModelFactory) -> None:
    model = scripted_model(research_turn)
    settings = service_settings(tmp_path, model.base_url, max_request_bytes=2048)
    with ThreadServer(settings) as server:
        url = server.url
        # 400: a Last-Event-ID we never sent
        thread = httpx.post(url + "/threads", json={}).json()["thread_id"]
        wait = {"assistant_id": "research", "input": {"question": "capital?"}}
        run = httpx.post(f"{url}/threads/{thread}/runs/wait", json=wait)
        assert run.status_code == 200
        run_id = httpx.get(f"{url}/threads/{thread}/runs").json()[0]["run_id"]
        r = httpx.get(f"{url}/threads/{thread}/runs/{run_id}/stream",
                      headers={"Last-Event-ID": "garbage"})  # fmt: skip
        assert r.status_code == 400 and r.json()["error"]["param"] == "Last-Event-ID"
        # 404: unknown thread, unknown route
        r = httpx.get(url + "/threads/nope")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"
        assert httpx.get(url + "/no/such/route").json()["error"]["type"] == "not_found"
        # 409: thread exists
        r = httpx.post(url + "/threads", json={"thread_id": thread})
        assert r.status_code == 409 and "if_exists" in r.json()["error"]["message"]
        # 413: body too large
        r = httpx.post(url + "/v1/search", json={"query": "x" * 5000})
        assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"
        # ...also when the body is chunked and declares no size; a small chunked body passes
        big = iter([b'{"query": "', b"x" * 5000, b'"}'])
        r = httpx.post(url + "/v1/search", content=big, headers=JSON)
        assert r.status_code == 413 and r.json()["error"]["type"] == "payload_too_large"
        small = iter([b'{"query": ', b'"capital"}'])
        assert httpx.post(url + "/v1/search", content=small, headers=JSON).status_code == 200
        # 422: names the field and the reason
        r = httpx.post(url + "/v1/search", json={"query": "capital", "k": 0})
        body = r.json()
        assert r.status_code == 422 and body["error"]["param"] == "k"
        assert "greater than or equal to 1" in body["error"]["message"]
        r = httpx.post(url + "/v1/search", json={"query": "capital", "kk": 3})
        assert r.status_code == 422 and r.json()["error"]["param"] == "kk"  # native: forbid
        bad_mode = {"assistant_id": "research", "stream_mode": "debug", "input": {}}
        r = httpx.post(url + "/threads/x/runs", json=bad_mode)
        assert r.status_code == 422
        # no stack traces anywhere
        assert "Traceback" not in r.text
        # search works and returns typed hits
        hits = httpx.post(url + "/v1/search", json={"query": "capital Freedonia", "k": 2}).json()
        assert hits["hits"][0]["doc_id"] == "freedonia"


def test_rate_limit_and_queue_full_are_429_with_retry_after(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    release = threading.Event()

    def slow(req: ScriptRequest) -> ScriptedTurn:
        release.wait(10)
        return research_turn(req)

    model = scripted_model(slow)
    settings = service_settings(
        tmp_path, model.base_url, max_active_runs=1, max_queued_runs=1, max_runs_per_key=5,
        requests_per_minute=20,
    )  # fmt: skip
    with ThreadServer(settings) as server:
        url = server.url
        body = {"question": "capital?"}
        assert httpx.post(url + "/v1/runs", json=body).status_code == 202
        assert httpx.post(url + "/v1/runs", json=body).status_code == 202
        full = httpx.post(url + "/v1/runs", json=body)
        assert full.status_code == 429 and full.json()["error"]["type"] == "queue_full"
        assert int(full.headers["Retry-After"]) >= 1
        metrics = httpx.get(url + "/metrics").text
        assert 'thinkrag_requests_rejected_total{reason="queue_full"} 1.0' in metrics
        assert "thinkrag_queue_depth 1.0" in metrics
        codes = [httpx.get(url + "/v1/models").status_code for _ in range(30)]
        assert 429 in codes
        limited = httpx.get(url + "/v1/models")
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        release.set()


def test_runs_per_key_limit(tmp_path: Path, scripted_model: ModelFactory) -> None:
    release = threading.Event()

    def slow(req: ScriptRequest) -> ScriptedTurn:
        release.wait(10)
        return research_turn(req)

    model = scripted_model(slow)
    settings = service_settings(tmp_path, model.base_url, max_runs_per_key=1)
    with ThreadServer(settings) as server:
        assert httpx.post(server.url + "/v1/runs", json={"question": "a?"}).status_code == 202
        r = httpx.post(server.url + "/v1/runs", json={"question": "b?"})
        assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limited"
        release.set()


def test_cors_is_configurable(tmp_path: Path, scripted_model: ModelFactory) -> None:
    model = scripted_model(research_turn)
    settings = service_settings(tmp_path, model.base_url, cors_origins="https://app.example")
    with ThreadServer(settings) as server:
        r = httpx.options(
            server.url + "/v1/search",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = httpx.get(server.url + "/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
