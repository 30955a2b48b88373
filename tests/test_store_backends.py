"""The `Store` contract, run against both implementations: the SQLite file and a real
Postgres server (tests/fixtures/postgres.py). Leases and claims are what replicas rely on:
two claimers never get the same run, a dead claimer's runs come back, and runs on one
thread go one at a time in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from serving.http import postgres_store
from serving.http.postgres_store import PostgresStore
from serving.http.run_store import DuplicateEventError, ResponseRecord, Store, StoreError
from serving.http.sqlite_store import SqliteStore
from testing.postgres import TemporaryPostgres

Opener = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the test's database (again, for a reopen); closes what it opened."""
    if request.param == "sqlite":
        target = tmp_path / "service.db"

        def make() -> Store:
            return SqliteStore(target)
    else:
        url = request.getfixturevalue("postgres_url")

        def make() -> Store:
            return PostgresStore(url)

    opened: list[Store] = []

    def tracked() -> Store:
        opened.append(make())
        return opened[-1]

    yield tracked
    for store in opened:
        store.close()


def _run(store: Store, run_id: str, thread_id: str = "t", owner: str = "o") -> None:
    if store.get_thread(thread_id) is None:
        store.create_thread(thread_id, {}, owner=owner)
    store.create_run(
        run_id=run_id, thread_id=thread_id, assistant_id="research", question="q",
        options={}, metadata={}, owner=owner, base_state={},
    )  # fmt: skip
    time.sleep(0.002)  # distinct creation times keep the order unambiguous


def test_events_are_numbered_once_and_survive_reopening(opener: Opener) -> None:
    store = opener()
    _run(store, "r")
    for seq in range(1, 6):
        store.append_event("r", seq, "agent", f'{{"n": {seq}}}')
    with pytest.raises(DuplicateEventError, match="another replica"):
        store.append_event("r", 3, "agent", "{}")
    store.set_run_status("r", "running", attempt=1)
    again = opener()
    assert again.last_seq("r") == 5
    assert [e.seq for e in again.events_after("r", 2, limit=2)] == [3, 4]
    assert [r.run_id for r in again.unfinished_runs()] == ["r"]
    again.delete_thread("t")
    assert again.get_run("r") is None and again.events_after("r", 0, limit=10) == []


def test_claims_follow_thread_order_and_never_overlap(opener: Opener) -> None:
    store = opener()
    _run(store, "a1", "A")
    _run(store, "a2", "A")
    _run(store, "b1", "B")
    first = store.claim_runs("one", 10, 30)
    assert [r.run_id for r in first] == ["a1", "b1"]  # a2 waits for a1
    assert all(r.lease_owner == "one" for r in first)
    assert store.claim_runs("two", 10, 30) == []  # all held
    assert store.queue_depth() == 1  # a2: no live lease holds it
    store.set_run_status("a1", "success")
    assert [r.run_id for r in store.claim_runs("two", 10, 30)] == ["a2"]
    assert store.count_unfinished() == 2 and store.count_unfinished(owner="x") == 0


def test_an_expired_lease_goes_to_another_replica_and_the_old_one_learns_it(
    opener: Opener,
) -> None:
    store = opener()
    _run(store, "r")
    assert [r.run_id for r in store.claim_runs("dead", 1, 0.5)] == ["r"]
    assert store.claim_runs("live", 1, 30) == []
    time.sleep(0.7)
    taken = store.claim_runs("live", 1, 30)
    assert [(r.run_id, r.lease_owner) for r in taken] == [("r", "live")]
    report = store.renew_leases("dead", ["r"], 30)
    assert report.lost == {"r"}
    assert store.renew_leases("live", ["r"], 30).lost == frozenset()
    store.release_lease("r", "live")
    assert [r.run_id for r in store.claim_runs("other", 1, 30, run_id="r")] == ["r"]


def test_cancel_requests_reach_the_holder_and_unheld_runs_cancel_at_once(
    opener: Opener,
) -> None:
    store = opener()
    _run(store, "held", "A")
    _run(store, "queued", "B")
    store.claim_runs("one", 1, 30, run_id="held")
    assert not store.cancel_pending("held", "{}")  # its holder must stop it
    store.request_cancel("held")
    assert store.renew_leases("one", ["held"], 30).cancel == {"held"}
    assert store.cancel_pending("queued", '{"type": "error"}')
    queued = store.get_run("queued")
    assert queued is not None and queued.status == "interrupted"
    assert [e.data for e in store.events_after("queued", 0, limit=5)] == ['{"type": "error"}']
    store.set_run_status("held", "interrupted", error="cancelled")
    held = store.get_run("held")
    assert held is not None and held.lease_owner == "" and not held.cancel_requested


def test_responses_are_kept_and_go_with_their_thread(opener: Opener) -> None:
    store = opener()
    _run(store, "r")
    for n in (1, 2):
        store.create_response(
            ResponseRecord(f"resp{n}", "t", "r", "o", None, time.time(), {"n": n}, None, True)
        )
    store.set_response_output("resp1", {"status": "completed"})
    got = store.get_response("resp1")
    assert got is not None and got.output == {"status": "completed"} and got.request == {"n": 1}
    assert store.latest_response_on_thread("t") == "resp2"
    store.delete_response("resp2")
    assert store.latest_response_on_thread("t") == "resp1"
    store.delete_thread("t")
    assert store.get_response("resp1") is None


def test_two_replicas_racing_claim_each_run_exactly_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(4)]
    try:
        for n in range(40):
            _run(stores[0], f"r{n}", thread_id=f"t{n}")
        claimed: list[list[str]] = [[] for _ in stores]

        def claim(i: int) -> None:
            while batch := stores[i].claim_runs(f"replica{i}", 3, 30):
                claimed[i] += [r.run_id for r in batch]

        workers = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        every = [r for mine in claimed for r in mine]
        assert sorted(every) == sorted(f"r{n}" for n in range(40))  # each once, none lost
    finally:
        for store in stores:
            store.close()


def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    # LangGraph's setup builds indexes CONCURRENTLY, which waits for open transactions: a
    # replica blocked on the migration lock inside a statement deadlocked it.
    errors: list[BaseException] = []

    def start() -> None:
        try:
            PostgresStore(postgres_url).close()
        except BaseException as exc:
            errors.append(exc)

    starters = [threading.Thread(target=start) for _ in range(4)]
    for t in starters:
        t.start()
    for t in starters:
        t.join(120)
    assert errors == []
    assert _version(postgres_url) == postgres_store.SCHEMA_VERSION


def _version(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(version) FROM thinkrag_schema").fetchone()
    return int(row[0]) if row else 0


def test_postgres_migrates_an_empty_database_and_the_previous_version(
    postgres_server: TemporaryPostgres,
) -> None:
    empty = postgres_server.database()
    PostgresStore(empty).close()
    assert _version(empty) == postgres_store.SCHEMA_VERSION
    PostgresStore(empty).close()  # nothing left to apply

    # A database the previous release wrote: version 1, no lease columns, one run.
    old = postgres_server.database()
    with psycopg.connect(old, autocommit=True) as conn:
        conn.execute("CREATE TABLE thinkrag_schema (version INTEGER NOT NULL)")
        for statement in postgres_store._MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("INSERT INTO thinkrag_schema VALUES (1)")
        conn.execute(
            "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at,"
            " status, question, owner) VALUES ('r', 't', 'research', 1, 1, 'running', 'q', 'k')"
        )
    store = PostgresStore(old)
    try:
        assert _version(old) == postgres_store.SCHEMA_VERSION
        run = store.get_run("r")
        assert run is not None and run.owner == "k" and run.lease_owner == ""
        assert [r.run_id for r in store.claim_runs("one", 5, 30)] == ["r"]  # resumable
    finally:
        store.close()


def test_a_newer_schema_is_refused_by_both_stores(postgres_url: str, tmp_path: Path) -> None:
    PostgresStore(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE thinkrag_schema SET version = version + 1")
    with pytest.raises(StoreError, match="newer than this release"):
        PostgresStore(postgres_url)
    import sqlite3

    path = tmp_path / "s.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer than this release"):
        SqliteStore(path)


def test_an_unreachable_database_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot connect.*THINKRAG_DATABASE_URL") as info:
        PostgresStore("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    assert "\n" not in str(info.value)
