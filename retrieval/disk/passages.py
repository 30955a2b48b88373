"""The passage store: SQLite (WAL) holding documents, passages and their vectors.

The store is the source of truth; the FAISS and BM25 files of a generation are rebuilt from
it. Every row records the generation that added it (`gen_added`) and the one that removed it
(`gen_removed`, NULL while live), so readers of generation G see exactly
``gen_added <= G AND (gen_removed IS NULL OR gen_removed > G)`` while a job writes G+1.
Passages and their vectors are committed together, one transaction per embedding batch,
which is what lets a SIGKILLed job resume from its last committed batch.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class LiveVersion:
    version_id: int
    content_hash: str
    gen_added: int
    complete: bool


@dataclass(frozen=True, slots=True)
class PendingVersion:
    version_id: int
    doc_id: str
    content_hash: str
    title: str
    text: str
    n_passages: int


@dataclass(frozen=True, slots=True)
class NewPassage:
    version_id: int
    doc_id: str
    content_hash: str
    title: str
    ordinal: int
    start: int
    end: int
    text: str


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
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
        raise CorruptIndexError(
            f"the passage store {path} cannot be read ({exc}); re-run "
            "`thinkrag index ... --rebuild` into a fresh --index directory"
        ) from exc
    return conn


class StoreWriter:
    """The job's single writable connection. Not thread-safe: one job, one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = _connect(path, readonly=False)

    def close(self) -> None:
        self.conn.close()

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def committed_batches(self) -> int:
        return int(self.get_meta("committed_batches") or 0)

    # -- versions -----------------------------------------------------------------------
    def live_versions(self) -> dict[str, LiveVersion]:
        """doc_id -> live version (the one the next generation keeps unless replaced)."""
        rows = self.conn.execute(
            "SELECT doc_id, version_id, content_hash, gen_added, complete FROM versions "
            "WHERE gen_removed IS NULL"
        )
        return {r[0]: LiveVersion(r[1], r[2], r[3], bool(r[4])) for r in rows}

    def add_version(
        self,
        *,
        doc_id: str,
        content_hash: str,
        title: str,
        source: str,
        text: str,
        n_passages: int,
        generation: int,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO versions(doc_id, content_hash, title, source, n_passages, complete, "
            "pending_text, gen_added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc_id,
                content_hash,
                title,
                source,
                n_passages,
                int(n_passages == 0),
                text if n_passages else None,
                generation,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def remove_version(self, version_id: int, generation: int) -> None:
        """Hide a version from `generation` on; drop it outright if no reader ever saw it."""
        row = self.conn.execute(
            "SELECT gen_added FROM versions WHERE version_id=?", (version_id,)
        ).fetchone()
        if row is None:
            return
        if row[0] >= generation:
            self.conn.execute(
                "DELETE FROM vectors WHERE pk IN (SELECT pk FROM passages WHERE version_id=?)",
                (version_id,),
            )
            self.conn.execute("DELETE FROM passages WHERE version_id=?", (version_id,))
            self.conn.execute("DELETE FROM versions WHERE version_id=?", (version_id,))
        else:
            self.conn.execute(
                "UPDATE versions SET gen_removed=? WHERE version_id=?", (generation, version_id)
            )
            self.conn.execute(
                "UPDATE passages SET gen_removed=? WHERE version_id=?", (generation, version_id)
            )

    def pending_version_ids(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT version_id FROM versions WHERE complete=0 AND gen_removed IS NULL "
            "ORDER BY version_id"
        )
        return [int(r[0]) for r in rows]

    def pending_passage_count(self) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(v.n_passages), 0) - (SELECT count(*) FROM passages p JOIN "
            "versions w ON p.version_id=w.version_id WHERE w.complete=0 AND "
            "w.gen_removed IS NULL) FROM versions v WHERE v.complete=0 AND v.gen_removed IS NULL"
        ).fetchone()
        return int(row[0])

    def pending_version(self, version_id: int) -> PendingVersion:
        r = self.conn.execute(
            "SELECT version_id, doc_id, content_hash, title, pending_text, n_passages "
            "FROM versions WHERE version_id=?",
            (version_id,),
        ).fetchone()
        return PendingVersion(r[0], r[1], r[2], r[3], r[4] or "", r[5])

    def existing_ordinals(self, version_id: int) -> set[int]:
        rows = self.conn.execute("SELECT ordinal FROM passages WHERE version_id=?", (version_id,))
        return {int(r[0]) for r in rows}

    def commit_batch(
        self,
        passages: Sequence[NewPassage],
        vectors: Vectors,
        completed: Iterable[int],
        generation: int,
    ) -> None:
        """Passages, their vectors and finished documents in one transaction."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for passage, vector in zip(passages, vectors, strict=True):
                cur = self.conn.execute(
                    "INSERT INTO passages(passage_id, version_id, doc_id, ordinal, start_char, "
                    "end_char, text, gen_added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        passage_id_for(passage.doc_id, passage.content_hash, passage.ordinal),
                        passage.version_id,
                        passage.doc_id,
                        passage.ordinal,
                        passage.start,
                        passage.end,
                        passage.text,
                        generation,
                    ),
                )
                self.conn.execute(
                    "INSERT INTO vectors(pk, vector) VALUES (?, ?)",
                    (cur.lastrowid, np.ascontiguousarray(vector, dtype=np.float32).tobytes()),
                )
            for version_id in completed:
                self.conn.execute(
                    "UPDATE versions SET complete=1, pending_text=NULL WHERE version_id=?",
                    (version_id,),
                )
            self.set_meta("committed_batches", str(self.committed_batches() + 1))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def purge(self, up_to_generation: int) -> None:
        """Delete rows no kept generation can see any more."""
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute(
            "DELETE FROM vectors WHERE pk IN (SELECT pk FROM passages WHERE gen_removed <= ?)",
            (up_to_generation,),
        )
        self.conn.execute("DELETE FROM passages WHERE gen_removed <= ?", (up_to_generation,))
        self.conn.execute("DELETE FROM versions WHERE gen_removed <= ?", (up_to_generation,))
        self.conn.execute("COMMIT")


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
            conn = _connect(self.path, readonly=True)
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
