"""Threads and runs belong to the API key that created them, against a real server."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving.http.run_store import StoreError
from serving.http.sqlite_store import _SCHEMA, SCHEMA_VERSION
from serving.http.sqlite_store import SqliteStore as Store
from serving.runtime import build_store
from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import (
    ModelFactory,
    ThreadServer,
    research_turn,
    service_settings,
    sse_events,
)

ASK = {"assistant_id": "research", "input": {"question": "What is the capital of Freedonia?"}}
MISSING = "00000000-0000-0000-0000-000000000000"
# Every route that reads or changes one thread or run: (method, path, JSON body).
ROUTES: list[tuple[str, str, dict[str, object] | None]] = [
    ("GET", "/threads/{t}", None),
    ("GET", "/threads/{t}/state", None),
    ("GET", "/threads/{t}/history", None),
    ("POST", "/threads/{t}/history", {"limit": 5}),
    ("GET", "/threads/{t}/runs", None),
    ("POST", "/threads/{t}/runs", ASK),
    ("POST", "/threads/{t}/runs/stream", ASK),
    ("POST", "/threads/{t}/runs/wait", ASK),
    ("GET", "/threads/{t}/runs/{r}", None),
    ("GET", "/threads/{t}/runs/{r}/stream", None),
    ("GET", "/threads/{t}/runs/{r}/join", None),
    ("POST", "/threads/{t}/runs/{r}/cancel", None),
    ("DELETE", "/threads/{t}/runs/{r}", None),
    ("DELETE", "/threads/{t}", None),
    ("GET", "/v1/runs/{r}", None),
    ("GET", "/v1/runs/{r}/events", None),
    ("POST", "/v1/runs/{r}/cancel", None),
    ("POST", "/v1/runs/{r}/resume", None),
]


def key_id(key: str) -> str:
    """The owner the service records for `key` (see `serving/http/auth.py`)."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def client(server: ThreadServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=30)


def not_found(response: httpx.Response, *ids: str) -> str:
    """Assert the service's usual 404 body; return its message with `ids` blanked out."""
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["type"] == error["code"] == "not_found"
    message = str(error["message"])
    for ident in ids:
        message = message.replace(ident, "ID")
    return message


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    release = threading.Event()
    yield release
    release.set()  # never leave a model thread waiting


@pytest.mark.usefixtures("store_backend")
def test_another_key_cannot_see_or_touch_a_thread_or_its_runs(
    tmp_path: Path, scripted_model: ModelFactory, gate: threading.Event
) -> None:
    def gated(req: ScriptRequest) -> ScriptedTurn:
        gate.wait(10)  # the run stays live until B has tried everything
        return research_turn(req)

    model = scripted_model(gated)
    settings = service_settings(tmp_path, model.base_url, api_keys="alpha,beta")
    with (
        ThreadServer(settings) as server,
        client(server, "alpha") as a,
        client(server, "beta") as b,
    ):
        tid = a.post("/threads", json={"metadata": {"who": "a"}}).json()["thread_id"]
        rid = a.post(f"/threads/{tid}/runs", json=ASK).json()["run_id"]
        thread, run = f"/threads/{tid}", f"/threads/{tid}/runs/{rid}"

        # Every read and write of A's thread and live run answers exactly what the same
        # request about an unknown id answers, so ids cannot be probed.
        for method, path, body in ROUTES:
            foreign = b.request(method, path.format(t=tid, r=rid), json=body)
            unknown = b.request(method, path.format(t=MISSING, r=MISSING), json=body)
            assert not_found(foreign, tid, rid) == not_found(unknown, MISSING), path
        # ids are global: B cannot take A's, but learns nothing else and changes nothing
        for response in (
            b.post("/threads", json={"thread_id": tid, "if_exists": "do_nothing"}),
            b.post(thread + "/runs", json={**ASK, "if_not_exists": "create"}),
            b.post("/v1/runs", json={"question": "capital?", "thread_id": tid}),
        ):
            assert response.status_code == 409 and "who" not in response.text
        assert tid not in {t["thread_id"] for t in b.post("/threads/search", json={}).json()}

        # A's run was neither cancelled nor deleted, and A still has everything.
        assert a.get(run).json()["status"] in ("pending", "running")
        gate.set()
        assert a.get(run + "/join").json()["result"]["answer"].startswith("The capital")
        assert a.get(thread).json()["metadata"] == {"who": "a"}
        assert a.get(thread + "/state").json()["values"]["sources"]
        assert len(a.get(thread + "/history").json()) > 1  # one checkpoint per step
        assert [r["run_id"] for r in a.get(thread + "/runs").json()] == [rid]
        assert a.get(f"/v1/runs/{rid}").json()["status"] == "success"
        with a.stream("GET", run + "/stream") as response:
            assert response.status_code == 200
            assert list(sse_events(response.iter_lines()))[-1][0] == "end"
        assert tid in {t["thread_id"] for t in a.post("/threads/search", json={}).json()}

        # B's own thread is B's alone, and the search lists only it.
        mine = b.post("/threads", json={}).json()["thread_id"]
        assert [t["thread_id"] for t in b.post("/threads/search", json={}).json()] == [mine]
        assert a.get(f"/threads/{mine}").status_code == 404

        assert a.delete(thread).status_code == 204
        assert a.get(thread).status_code == 404


def test_without_keys_everything_stays_shared(tmp_path: Path, scripted_model: ModelFactory) -> None:
    model = scripted_model(research_turn)
    with (
        ThreadServer(service_settings(tmp_path, model.base_url)) as server,
        client(server, "ignored") as first,
        client(server, "other") as second,
    ):
        tid = first.post("/threads", json={}).json()["thread_id"]
        assert second.post(f"/threads/{tid}/runs/wait", json=ASK).status_code == 200
        assert [t["thread_id"] for t in second.post("/threads/search", json={}).json()] == [tid]
        assert second.delete(f"/threads/{tid}").status_code == 204


@pytest.mark.usefixtures("store_backend")
@pytest.mark.parametrize("policy", ["resume", "mark"])
def test_a_recovered_run_keeps_its_owner(
    tmp_path: Path, scripted_model: ModelFactory, policy: str
) -> None:
    owner = key_id("alpha")
    model = scripted_model(research_turn)
    settings = service_settings(tmp_path, model.base_url, api_keys="alpha,beta", recover=policy)
    store = build_store(settings)  # what a killed server left behind
    store.create_thread("t", {}, owner=owner)
    store.create_run(
        run_id="r", thread_id="t", assistant_id="research", question="capital of Freedonia?",
        options={}, metadata={}, owner=owner, base_state={},
    )  # fmt: skip
    store.set_run_status("r", "running", attempt=1)
    store.close()

    with (
        ThreadServer(settings) as server,
        client(server, "alpha") as a,
        client(server, "beta") as b,
    ):
        if policy == "mark":  # interrupted, waiting for its owner to resume it
            assert a.get("/threads/t/runs/r").json()["status"] == "interrupted"
            assert b.post("/v1/runs/r/resume").status_code == 404
            assert a.post("/v1/runs/r/resume").status_code == 202
        assert b.get("/threads/t/runs/r").status_code == 404
        assert a.get("/threads/t/runs/r/join").json()["result"]["answer"].startswith("The capital")
        assert a.get("/v1/runs/r").json()["attempt"] == 2
        assert b.get("/threads/t/runs/r").status_code == 404
    reopened = build_store(settings)
    assert reopened.get_run("r").owner == owner  # type: ignore[union-attr]
    reopened.close()


def test_migration_gives_old_threads_the_key_of_their_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA)  # version 0: threads had no owner
    run = "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at, status,"
    run += " question, owner) VALUES (?, ?, 'research', 0, 0, 'success', 'q', ?)"
    for thread_id in ("solo", "none", "mixed"):
        db.execute("INSERT INTO threads VALUES (?, 0, 0, '{}', '{}', 0)", (thread_id,))
    db.executemany(run, [("r1", "solo", "key:a"), ("r2", "solo", "key:a"),
                         ("r3", "mixed", "key:a"), ("r4", "mixed", "key:b")])  # fmt: skip
    db.commit()
    db.close()

    store = Store(path)
    threads = [store.get_thread(t) for t in ("solo", "none", "mixed")]
    owners = {t.thread_id: t.owner for t in threads if t is not None}
    assert owners == {"solo": "key:a", "none": "", "mixed": ""}  # ambiguous: nobody's
    assert [t.thread_id for t in store.search_threads(owner="key:a", limit=10, offset=0)] == [
        "solo"
    ]
    assert len(store.search_threads(owner=None, limit=10, offset=0)) == 3
    store.close()
    Store(path).close()  # reopening migrates nothing twice

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this release"):
        Store(path)
