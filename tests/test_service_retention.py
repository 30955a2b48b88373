"""Temporary threads do not pile up (issue 12, D8), on a real server and its real databases.

Chat completions, stateless runs and `/v1/runs` without a thread each make a temporary
thread; once idle for the retention they go with their runs, events and checkpoints,
while kept threads stay. A request refused with 429 leaves no thread behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import time
from pathlib import Path

import httpx

from testing.scripted import ScriptedTurn, ScriptRequest
from tests.test_service_support import ModelFactory, ThreadServer, research_turn, service_settings

CHAT = {"model": "thinkrag-research", "messages": [{"role": "user", "content": "Capital?"}]}
STATELESS = {"assistant_id": "research", "input": {"question": "Capital?"}}
# Long enough that the four requests below finish inside it on a loaded machine.
RETENTION = 6.0


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


def _wait_done(url: str, run_id: str) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/v1/runs/{run_id}").json()["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.05)


def test_temporary_threads_go_after_the_retention(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    model = scripted_model(research_turn)
    settings = service_settings(
        tmp_path, model.base_url, temporary_thread_retention_seconds=RETENTION
    )
    db, checkpoints = settings.db_path, settings.resolved_checkpoint_path
    with ThreadServer(settings) as server:
        url = server.url
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=30).status_code == 200
        assert httpx.post(url + "/runs/wait", json=STATELESS, timeout=30).status_code == 200
        native = httpx.post(url + "/v1/runs", json={"question": "Capital?"}).json()["run_id"]
        _wait_done(url, native)
        kept = httpx.post(url + "/threads", json={}).json()["thread_id"]
        wait = httpx.post(f"{url}/threads/{kept}/runs/wait", json=STATELESS, timeout=30)
        assert wait.status_code == 200
        temporary = [t for (t,) in _rows(db, "SELECT thread_id FROM threads WHERE temporary = 1")]
        assert len(temporary) == 3
        checkpointed = {t for (t,) in _rows(checkpoints, "SELECT thread_id FROM checkpoints")}
        assert set(temporary) <= checkpointed
        assert httpx.get(f"{url}/v1/runs/{native}").status_code == 200  # inside the retention

        deadline = time.monotonic() + RETENTION + 10
        while _rows(db, "SELECT count(*) FROM threads WHERE temporary = 1")[0][0]:
            assert time.monotonic() < deadline, "temporary threads outlived their retention"
            time.sleep(0.2)
        assert httpx.get(f"{url}/v1/runs/{native}").status_code == 404
        assert httpx.get(f"{url}/threads/{kept}").status_code == 200  # kept threads stay
        assert len(httpx.get(f"{url}/threads/{kept}/runs").json()) == 1
        left = {t for (t,) in _rows(checkpoints, "SELECT thread_id FROM checkpoints")}
    assert left == {kept}  # the temporary threads' checkpoints went with them
    runs = {t for (t,) in _rows(db, "SELECT thread_id FROM runs")}
    assert runs == {kept}
    orphans = _rows(db, "SELECT count(*) FROM events WHERE run_id NOT IN (SELECT run_id FROM runs)")
    assert orphans[0][0] == 0


def test_a_request_refused_with_429_leaves_no_thread(
    tmp_path: Path, scripted_model: ModelFactory
) -> None:
    def slow(req: ScriptRequest) -> ScriptedTurn:
        return dataclasses.replace(research_turn(req), first_byte_delay=1.5)

    model = scripted_model(slow)
    settings = service_settings(tmp_path, model.base_url, max_active_runs=1, max_queued_runs=0)
    with ThreadServer(settings) as server:
        url = server.url
        busy = httpx.post(url + "/v1/runs", json={"question": "Capital?"})
        assert busy.status_code == 202
        refused = [
            httpx.post(url + "/v1/chat/completions", json=CHAT),
            httpx.post(url + "/runs/wait", json=STATELESS),
            httpx.post(url + "/runs/stream", json=STATELESS),
            httpx.post(url + "/v1/runs", json={"question": "Capital?"}),
            httpx.post(url + "/v1/runs", json={"question": "Capital?", "thread_id": "fresh"}),
            httpx.post(url + "/threads/new-one/runs/wait",
                       json={**STATELESS, "if_not_exists": "create"}),
        ]  # fmt: skip
        assert [r.status_code for r in refused] == [429] * len(refused), [r.text for r in refused]
        threads = _rows(settings.db_path, "SELECT thread_id FROM threads")
        assert [t for (t,) in threads] == [httpx.get(f"{url}/v1/runs/{busy.json()['run_id']}")
                                           .json()["thread_id"]]  # fmt: skip
        _wait_done(url, busy.json()["run_id"])
