"""The console's page and the read-only corpus routes, over real HTTP against a real FAISS
index (built with the model-free hash embedder, served in bm25 mode so no model loads),
and the console address `thinkrag serve` prints."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import httpx
import pytest

from agent.events import StopReason, reason_text
from retrieval.disk.generation import open_index
from retrieval.disk.layout import LAST_RUN_FILE
from retrieval.indexing.job import run_index_job
from retrieval.indexing.job_types import IndexConfig
from retrieval.indexing.last_run import read_last_run
from retrieval.search.retriever import FaissRetriever
from retrieval.types import Passage
from serving.http.routes.corpus import document_text
from serving.runtime import Components, build_components
from serving.settings import Settings
from testing.embedder import HashEmbedder
from tests.console_support import app_server
from tests.test_service_support import REPO, ThreadServer, service_settings

STATIC = Path(__file__).resolve().parents[1] / "serving" / "console" / "static"
HISTORY = " ".join(
    f"In year {1700 + i} the river traders of Sylvania City built wharf number {i}."
    for i in range(30)
)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    docs = root / "docs"
    (docs / "towns").mkdir(parents=True)
    (docs / "towns" / "sylvania.md").write_text(f"# Sylvania City\n\n{HISTORY}\n", encoding="utf-8")
    (docs / "marmots.txt").write_text("Marmots hibernate for half the year.\n", encoding="utf-8")
    (docs / "towns" / "map.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # skipped: unsupported
    (docs / "blank.md").write_text("\n   \n", encoding="utf-8")  # skipped: no text
    index = root / "index"
    config = IndexConfig(max_tokens=48, overlap_tokens=12)
    run_index_job([docs], index, config, embedder=HashEmbedder())
    return index


@pytest.fixture(scope="module")
def server(indexed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("svc")
    settings = service_settings(
        tmp, "http://127.0.0.1:9/v1", index_dir=indexed, memory_passages=None,
        retriever_mode="bm25",
    )  # fmt: skip
    with ThreadServer(settings) as srv:
        yield srv.url


def test_corpus_info_describes_the_published_generation(server: str) -> None:
    info = httpx.get(f"{server}/v1/corpus").json()
    assert info["kind"] == "index"
    assert info["mode"] == "bm25"
    assert info["generation"] == 1
    assert info["documents"] == 2
    assert info["passages"] > 3  # the long document was split
    assert info["embedder_id"] == HashEmbedder().id
    assert info["dim"] == 64
    assert info["factory"] and info["faiss_version"] and info["created_at"]
    assert info["chunking"] == {"max_tokens": 48, "overlap_tokens": 12}


def test_corpus_info_lists_what_the_last_indexing_run_skipped(server: str) -> None:
    run = httpx.get(f"{server}/v1/corpus").json()["last_run"]
    assert run["published"] and run["generation"] == 1
    assert (run["documents_read"], run["added"], run["removed"]) == (2, 2, 0)
    assert run["finished_at"].endswith("+00:00")
    reasons = {s["source"]: s["reason"] for s in run["skipped"]}
    assert run["skipped_total"] == 2 and set(reasons) == {"blank.md", "towns/map.png"}
    assert reasons["towns/map.png"].startswith("unsupported file type .png; supported: ")
    assert "no text to index" in reasons["blank.md"]


def test_last_run_is_none_without_a_readable_report(tmp_path: Path) -> None:
    """An index built before the report was kept, or a damaged report, shows no last run
    (and still serves): the report is informational."""
    assert read_last_run(tmp_path) is None
    (tmp_path / LAST_RUN_FILE).write_text('{"finished_at": "x", "report": {"gen', "utf-8")
    assert read_last_run(tmp_path) is None


def test_serve_prints_the_console_url_a_browser_opens(indexed: Path, tmp_path: Path) -> None:
    """`thinkrag serve` (the real entry point, --port 0) prints where the console is, once
    it accepts connections; that URL serves the page."""
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
        "THINKRAG_DB_PATH": str(tmp_path / "service.db"), "THINKRAG_RETRIEVER_MODE": "bm25",
    }  # fmt: skip
    args = ["serve", "--index", str(indexed), "--port", "0", "--model", "http://127.0.0.1:9/v1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from serving.cli import main; main()", *args,
         "--skip-model-check"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any(x.startswith("Research console: ") for x in seen):
            assert proc.poll() is None, "".join(seen)
            assert time.monotonic() < deadline, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        url = next(x for x in seen if x.startswith("Research console: ")).split(": ", 1)[1]
        url = url.strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*/", url), url
        page = httpx.get(url)
        assert page.status_code == 200 and 'id="question"' in page.text
    finally:
        proc.terminate()
        proc.wait(30)


def test_compare_runs_each_mode_the_server_can(server: str) -> None:
    body = httpx.post(f"{server}/v1/corpus/compare", json={"query": "wharf number 17"}).json()
    by_mode = {r["mode"]: r for r in body["results"]}
    assert body["served_mode"] == "bm25"
    assert "wharf number 17" in by_mode["bm25"]["hits"][0]["text"]
    for mode in ("dense", "hybrid"):  # no query embedder in bm25 mode: refused by name
        assert by_mode[mode]["hits"] == []
        assert "bm25 mode" in by_mode[mode]["unavailable"]
    bad = httpx.post(f"{server}/v1/corpus/compare", json={"query": "x", "mode": "fuzzy"})
    assert bad.status_code == 422


def test_compare_side_by_side_over_a_hybrid_index(indexed: Path, tmp_path: Path) -> None:
    """Served hybrid with its embedder: all three modes answer, from the one loaded index."""
    settings = service_settings(
        tmp_path, "http://127.0.0.1:9/v1", index_dir=indexed, memory_passages=None,
        retriever_mode="bm25",
    )  # fmt: skip
    hybrid = FaissRetriever(open_index(indexed, embedder=HashEmbedder()), embedder=HashEmbedder())

    def parts(s: Settings) -> Components:
        return dataclasses.replace(build_components(s), retriever=hybrid)

    with app_server(settings, parts) as url:
        body = httpx.post(
            f"{url}/v1/corpus/compare", json={"query": "wharf number 17", "k": 3}
        ).json()
    assert body["served_mode"] == "hybrid"
    for result in body["results"]:
        assert result["unavailable"] is None
        assert len(result["hits"]) == 3
        assert any("wharf number 17" in h["text"] for h in result["hits"]), result["mode"]
    assert hybrid.mode == "hybrid"  # the served retriever itself was not switched


def test_document_text_puts_every_passage_at_its_offsets(server: str) -> None:
    hits = httpx.post(f"{server}/v1/search", json={"query": "wharf number 17", "k": 1}).json()
    hit = hits["hits"][0]
    doc = httpx.get(f"{server}/v1/documents/{hit['doc_id']}").json()
    assert doc["title"] == "Sylvania City"
    assert doc["source"] == hit["source"]
    assert len(doc["passages"]) > 3
    starts = [p["start"] for p in doc["passages"]]
    assert starts == sorted(starts)
    for p in doc["passages"]:  # each passage exactly where its offsets say
        assert doc["text"][p["start"] : p["end"]] == p["text"]
    assert HISTORY[:200] in doc["text"]


def test_document_text_lays_overlapping_passages_at_their_offsets() -> None:
    text = "Alpha beta gamma. Delta epsilon zeta. Eta theta."
    spans = [(0, 24), (18, 37), (38, 48)]  # the first two overlap; a blank gap before the last
    parts = [Passage(i, "d", i, "T", text[a:b], "d.md", a, b) for i, (a, b) in enumerate(spans)]
    assert document_text(list(reversed(parts))) == text


def test_passage_with_neighbours_in_document_order(server: str) -> None:
    hit = httpx.post(f"{server}/v1/search", json={"query": "wharf number 17", "k": 1}).json()
    pid = hit["hits"][0]["passage_id"]
    view = httpx.get(f"{server}/v1/passages/{pid}", params={"window": 1}).json()
    assert view["passage"]["passage_id"] == pid
    ordinals = [n["ordinal"] for n in view["neighbours"]]
    mine = view["passage"]["ordinal"]
    assert mine in ordinals
    assert ordinals == list(range(ordinals[0], ordinals[0] + len(ordinals)))
    assert 2 <= len(ordinals) <= 3


def test_missing_and_bad_requests_say_what_to_do(server: str) -> None:
    missing = httpx.get(f"{server}/v1/passages/123456789")
    assert missing.status_code == 404
    assert "search again" in missing.json()["error"]["message"]
    gone = httpx.get(f"{server}/v1/documents/no/such/doc")
    assert gone.status_code == 404
    assert "doc_id" in gone.json()["error"]["message"]
    wide = httpx.get(f"{server}/v1/passages/1", params={"window": 50})
    assert wide.status_code == 422
    assert "window" in wide.text


def test_page_and_assets_are_served_same_origin_with_a_strict_policy(server: str) -> None:
    page = httpx.get(f"{server}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    # Every asset the page names is served from this origin; nothing external is loaded.
    names = re.findall(r'(?:src|href)="(/console/[^"]+)"', page.text)
    imports = [
        f"/console/{m}"
        for f in STATIC.glob("*.js")
        for m in re.findall(r'from "\./([^"]+)"', f.read_text(encoding="utf-8"))
    ]
    for path in {*names, *imports}:
        asset = httpx.get(server + path)
        assert asset.status_code == 200, path
    assert (
        httpx.get(f"{server}/console/app.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )
    for f in STATIC.iterdir():
        assert not re.search(r"https?://", f.read_text(encoding="utf-8")), f.name
    # The API the page sits beside is untouched.
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{server}/v1/models").status_code == 200
    assert httpx.post(f"{server}/threads/search", json={}).status_code == 200


def test_no_asset_writes_markup_from_strings() -> None:
    """Model and document text must reach the page as text: no innerHTML-style sinks."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    for f in STATIC.glob("*.js"):
        assert not sinks.search(f.read_text(encoding="utf-8")), f.name


def test_console_explains_every_stop_reason_as_the_agent_does() -> None:
    source = (STATIC / "run.js").read_text(encoding="utf-8")
    block = re.search(r"STOP_REASONS = (\{.*?\});", source, re.S)
    assert block is not None
    as_json = re.sub(r"(\w+):", r'"\1":', block.group(1)).replace(",\n}", "\n}")
    texts = json.loads(re.sub(r",\s*}", "}", as_json))
    assert texts == {reason: reason_text(reason) for reason in get_args(StopReason)}


def test_with_keys_the_page_loads_but_corpus_routes_need_a_key(
    indexed: Path, tmp_path: Path
) -> None:
    settings = service_settings(
        tmp_path, "http://127.0.0.1:9/v1", index_dir=indexed, memory_passages=None,
        retriever_mode="bm25", api_keys="k-one",
    )  # fmt: skip
    with ThreadServer(settings) as srv:
        assert httpx.get(f"{srv.url}/").status_code == 200
        assert httpx.get(f"{srv.url}/console/app.js").status_code == 200
        for path in ("/v1/corpus", "/v1/passages/1", "/v1/documents/x"):
            assert httpx.get(srv.url + path).status_code == 401, path
        ok = httpx.get(f"{srv.url}/v1/corpus", headers={"Authorization": "Bearer k-one"})
        assert ok.status_code == 200
