"""Probes and the key gate (issue 12, D15), against a real server.

With keys configured: anonymous probes see no model URL or paths; /readyz asks the model
server at most once per cache period and is rate-limited; a burst of wrong keys is
answered 429; the key is checked before the body is read or validated.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_service_support import ThreadServer, service_settings

ALPHA = {"Authorization": "Bearer alpha"}


@contextlib.contextmanager
def counting_model() -> Iterator[tuple[str, list[str]]]:
    """A model server that only answers GET /v1/models, counting each probe."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = json.dumps({"object": "list", "data": [{"id": "scripted"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def test_probes_hide_details_from_anonymous_callers(tmp_path: Path) -> None:
    with counting_model() as (url, _):
        settings = service_settings(tmp_path, url, api_keys="alpha")
        with ThreadServer(settings) as server:
            anonymous = [httpx.get(server.url + p) for p in ("/healthz", "/readyz")]
            keyed = [httpx.get(server.url + p, headers=ALPHA) for p in ("/healthz", "/readyz")]
    for r in anonymous:
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert url not in r.text and str(tmp_path) not in r.text, r.text
    for r in keyed:
        assert r.json()["model"] == url  # a valid key sees where the model is
    assert keyed[1].json()["checks"]["model"] == "ok"


def test_readyz_is_cached_and_rate_limited(tmp_path: Path) -> None:
    with counting_model() as (url, seen):
        settings = service_settings(tmp_path, url, requests_per_minute=20, readyz_cache_seconds=60)
        with ThreadServer(settings) as server:
            codes = [httpx.get(server.url + "/readyz").status_code for _ in range(12)]
    assert codes[:5] == [200] * 5 and 429 in codes
    assert seen.count("/v1/models") == 1  # one model probe for the whole burst


def test_wrong_keys_are_rate_limited(tmp_path: Path) -> None:
    with counting_model() as (url, _):
        settings = service_settings(tmp_path, url, api_keys="alpha", failed_keys_per_minute=10)
        with ThreadServer(settings) as server:
            wrong = {"Authorization": "Bearer guess"}
            codes = [httpx.get(server.url + "/v1/models", headers=wrong).status_code
                     for _ in range(8)]  # fmt: skip
            blocked = httpx.get(server.url + "/v1/models", headers=ALPHA)
    assert codes[:5] == [401] * 5 and codes[-1] == 429, codes
    # While the address is blocked even a right key waits: guessing cannot continue.
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"query": 5}', b'{"query": "' + b"x" * 5000 + b'"}'],
    ids=["bad-json", "bad-field", "too-large"],
)
def test_the_key_is_checked_before_the_body(tmp_path: Path, content: bytes) -> None:
    with counting_model() as (url, _):
        settings = service_settings(tmp_path, url, api_keys="alpha", max_request_bytes=2048)
        with ThreadServer(settings) as server:
            r = httpx.post(server.url + "/v1/search", content=content,
                           headers={"content-type": "application/json"})  # fmt: skip
            keyed = httpx.post(server.url + "/v1/search", content=content,
                               headers={"content-type": "application/json", **ALPHA})  # fmt: skip
    assert r.status_code == 401 and r.json()["error"]["type"] == "unauthorized", r.text
    assert "query" not in r.text  # nothing about the schema for a caller without a key
    assert keyed.status_code in (413, 422)  # with the key, the body's own problem


@pytest.mark.parametrize("restricted", [True, False])
def test_metrics_readers(tmp_path: Path, restricted: bool) -> None:
    """D17: totals are service-wide, never per key; `metrics_api_keys` names who reads them."""
    with counting_model() as (url, _):
        extra = {"metrics_api_keys": "ops"} if restricted else {}
        settings = service_settings(tmp_path, url, api_keys="alpha", **extra)
        with ThreadServer(settings) as server:
            tenant = httpx.get(server.url + "/metrics", headers=ALPHA)
            ops = httpx.get(server.url + "/metrics", headers={"Authorization": "Bearer ops"})
            ops_models = httpx.get(server.url + "/v1/models", headers={"x-api-key": "ops"})
    if restricted:
        assert tenant.status_code == 404 and tenant.json()["error"]["type"] == "not_found"
        assert ops.status_code == 200 and "thinkrag_runs_started_total" in ops.text
        assert ops_models.status_code == 200  # a metrics key is an API key too
    else:
        assert tenant.status_code == 200 and "thinkrag_runs_started_total" in tenant.text
        assert ops.status_code == 401
    for text in (tenant.text, ops.text):
        assert "key:" not in text  # no per-key series to read other tenants' totals from
