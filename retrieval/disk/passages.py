"""The passage store: SQLite (WAL) holding documents, passages and their vectors.

The store is the source of truth; the FAISS and BM25 files of a generation are rebuilt from
it. Every row records the generation that added it (`gen_added`) and the one that removed it
(`gen_removed`, NULL while live), so readers of generation G see exactly
``gen_added <= G AND (gen_removed IS NULL OR gen_removed > G)`` while a job writes G+1.
Passages and their vectors are committed together, one transaction per embedding batch,
which is what lets a SIGKILLed job resume from its last committed batch. A pending version
keeps its text and chunk spans (table ``spans``, added after format 1: older stores gain
the empty table on open) until its last passage is committed, so a document is chunked
once per job, at scan time.

This module holds the schema and the read side; `retrieval.disk.passage_writer` the job's
writable connection. No SQL lives anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from retrieval.errors import CorruptIndexError
from retrieval.types import Passage, Vectors

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
  version_id INTEGER PRIMARY KEY,
  doc_id TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  title TEXT NOT NULL,
  source TEXT NOT NULL,
  n_passages INTEGER NOT NULL,
  complete INTEGER NOT NULL DEFAULT 0,
  pending_text TEXT,
  gen_added INTEGER NOT NULL,
  gen_removed INTEGER
);
CREATE INDEX IF NOT EXISTS versions_doc ON versions(doc_id);
CREATE TABLE IF NOT EXISTS passages (
  pk INTEGER PRIMARY KEY,
  passage_id INTEGER NOT NULL,
  version_id INTEGER NOT NULL,
  doc_id TEXT NOT NULL,
  ordinal INTEGER NOT NULL,
  start_char INTEGER NOT NULL,
  end_char INTEGER NOT NULL,
  text TEXT NOT NULL,
  gen_added INTEGER NOT NULL,
  gen_removed INTEGER,
  UNIQUE (version_id, ordinal)
);
CREATE INDEX IF NOT EXISTS passages_id ON passages(passage_id);
CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc_id, ordinal);
CREATE TABLE IF NOT EXISTS vectors (pk INTEGER PRIMARY KEY, vector BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS spans (
  version_id INTEGER NOT NULL,
  ordinal INTEGER NOT NULL,
  start_char INTEGER NOT NULL,
  end_char INTEGER NOT NULL,
  PRIMARY KEY (version_id, ordinal)
);
"""

_VISIBLE = "p.gen_added <= :g AND (p.gen_removed IS NULL OR p.gen_removed > :g)"
_PASSAGE_COLS = (
    "p.passage_id, p.doc_id, p.ordinal, v.title, p.text, v.source, p.start_char, p.end_char"
)
_MASK63 = (1 << 63) - 1


def passage_id_for(doc_id: str, content_hash: str, ordinal: int) -> int:
    """Stable 63-bit id: the same passage of the same document version always gets it."""
    digest = hashlib.blake2b(
        f"{doc_id}\x1f{content_hash}\x1f{ordinal}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") & _MASK63


def connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise corrupt_store(path, exc) from exc
    return conn


def corrupt_store(path: Path, exc: sqlite3.DatabaseError) -> CorruptIndexError:
    return CorruptIndexError(
        f"the passage store {path} is damaged ({exc}); run the same `thinkrag index` "
        "command with --rebuild (it sets the damaged store aside and re-embeds everything)"
    )


class StoreReader:
    """Read-only view of one generation; safe to share between threads."""

    def __init__(self, path: Path, generation: int) -> None:
        self.path = path
        self.generation = generation
        self._local = threading.local()
        self._conn()  # fail early on a missing or corrupt file

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, readonly=True)
            self._local.conn = conn
        return conn

    def _query(self, sql: str, params: dict[str, object]) -> list[sqlite3.Row]:
        params = {"g": self.generation, **params}
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise CorruptIndexError(
                f"the passage store {self.path} failed a read ({exc}); "
                "re-run `thinkrag index ... --rebuild`"
            ) from exc

    def _select(self, where: str, params: dict[str, object], order: str = "") -> list[Passage]:
        sql = (
            f"SELECT {_PASSAGE_COLS} FROM passages p JOIN versions v "
            f"ON p.version_id=v.version_id WHERE {_VISIBLE} AND {where} {order}"
        )
        return [Passage(*row) for row in self._query(sql, params)]

    def passages_by_ids(self, ids: Sequence[int]) -> dict[int, Passage]:
        found: dict[int, Passage] = {}
        for start in range(0, len(ids), 500):
            chunk = [int(i) for i in ids[start : start + 500]]
            names = {f"i{n}": value for n, value in enumerate(chunk)}
            where = "p.passage_id IN (" + ",".join(":" + n for n in names) + ")"
            for passage in self._select(where, dict(names)):
                found[passage.passage_id] = passage
        return found

    def get_passage(self, passage_id: int) -> Passage | None:
        rows = self._select("p.passage_id = :pid", {"pid": int(passage_id)})
        return rows[0] if rows else None

    def document_passages(self, doc_id: str) -> list[Passage]:
        return self._select("p.doc_id = :d", {"d": doc_id}, "ORDER BY p.ordinal")

    def ordinal_range(self, doc_id: str, low: int, high: int) -> list[Passage]:
        return self._select(
            "p.doc_id = :d AND p.ordinal BETWEEN :lo AND :hi",
            {"d": doc_id, "lo": low, "hi": high},
            "ORDER BY p.ordinal",
        )

    def counts(self) -> tuple[int, int]:
        docs = self._query(
            "SELECT count(*) FROM versions p WHERE " + _VISIBLE + " AND p.complete=1", {}
        )[0][0]
        passages = self._query("SELECT count(*) FROM passages p WHERE " + _VISIBLE, {})[0][0]
        return int(docs), int(passages)

    def fingerprint(self) -> str:
        """sha256 over the sorted content hashes of the generation's documents."""
        digest = hashlib.sha256()
        rows = self._query(
            "SELECT p.doc_id, p.content_hash FROM versions p WHERE " + _VISIBLE + " ORDER BY 1",
            {},
        )
        for doc_id, content_hash in rows:
            digest.update(f"{doc_id}\x1f{content_hash}\n".encode())
        return digest.hexdigest()

    def iter_vectors(self, dim: int, batch: int = 4096) -> Iterator[tuple[np.ndarray, Vectors]]:
        """(passage ids, vectors) of the generation in batches, ordered by passage id."""
        last = -1
        while True:
            rows = self._query(
                "SELECT p.passage_id, x.vector FROM passages p JOIN vectors x ON x.pk=p.pk "
                f"WHERE {_VISIBLE} AND p.passage_id > :last ORDER BY p.passage_id LIMIT :n",
                {"last": last, "n": batch},
            )
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            if vecs.size != len(rows) * dim:
                raise CorruptIndexError(
                    f"stored vectors in {self.path} are not {dim}-dimensional; "
                    "re-run `thinkrag index ... --rebuild`"
                )
            yield ids, vecs.reshape(len(rows), dim)
            last = int(ids[-1])

    def iter_texts(self, batch: int = 2048) -> Iterator[tuple[list[int], list[str]]]:
        """(passage ids, title + newline + text) in passage-id order, for BM25."""
        last = -1
        while True:
            rows = self._query(
                "SELECT p.passage_id, v.title, p.text FROM passages p JOIN versions v "
                f"ON p.version_id=v.version_id WHERE {_VISIBLE} AND p.passage_id > :last "
                "ORDER BY p.passage_id LIMIT :n",
                {"last": last, "n": batch},
            )
            if not rows:
                return
            yield [int(r[0]) for r in rows], [f"{r[1]}\n{r[2]}" for r in rows]
            last = int(rows[-1][0])


def dumps_config(config: dict[str, object]) -> str:
    return json.dumps(config, sort_keys=True)
