"""The indexing job's writable connection to the passage store, and every write it makes.

The job never writes SQL itself: it records scanned versions (with their chunk spans),
commits embedded batches and purges what no kept generation can see, through this class.
Transactions are explicit (`transaction`, `checkpoint`, `commit_batch`), so what a SIGKILL
can leave behind is decided here: a half-scanned group of documents rolls back, an
embedded batch is either wholly in the store or not at all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.disk.passages import connect, corrupt_store, passage_id_for
from retrieval.types import Vectors


@dataclass(frozen=True, slots=True)
class LiveVersion:
    version_id: int
    content_hash: str
    gen_added: int
    complete: bool
    source: str = ""


@dataclass(frozen=True, slots=True)
class NewPassage:
    """A chunk of a pending document, ready to embed and commit."""

    version_id: int
    doc_id: str
    content_hash: str
    title: str
    ordinal: int
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class ChangeCounts:
    """Documents of the generation being written, against the published one."""

    added: int
    updated: int
    removed: int
    unchanged: int


class StoreWriter:
    """The job's single writable connection. Not thread-safe: one job, one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path, readonly=False)

    def close(self) -> None:
        self.conn.close()

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; rolled back on any error (a SIGKILL rolls back too)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def checkpoint(self) -> None:
        """Inside `transaction`: make what is written so far durable and carry on."""
        self.conn.execute("COMMIT")
        self.conn.execute("BEGIN IMMEDIATE")

    # -- meta ---------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def committed_batches(self) -> int:
        return int(self.get_meta("committed_batches") or 0)

    def check_integrity(self) -> None:
        """Raise `CorruptIndexError` when SQLite finds damaged pages (quick_check)."""
        try:
            rows = self.conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            raise corrupt_store(self.path, exc) from exc
        problems = [str(r[0]) for r in rows if r[0] != "ok"]
        if problems:
            raise corrupt_store(self.path, sqlite3.DatabaseError(problems[0]))

    # -- versions -----------------------------------------------------------------------
    def live_versions(self) -> dict[str, LiveVersion]:
        """doc_id -> live version (the one the next generation keeps unless replaced)."""
        rows = self.conn.execute(
            "SELECT doc_id, version_id, content_hash, gen_added, complete, source FROM versions "
            "WHERE gen_removed IS NULL"
        )
        return {r[0]: LiveVersion(r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows}

    def has_live_documents(self) -> bool:
        row = self.conn.execute("SELECT 1 FROM versions WHERE gen_removed IS NULL LIMIT 1")
        return row.fetchone() is not None

    def has_changes_for(self, generation: int) -> bool:
        """True when rows were added or removed for the not yet published `generation`."""
        for table in ("versions", "passages"):
            row = self.conn.execute(
                f"SELECT 1 FROM {table} WHERE gen_added >= ? OR gen_removed >= ? LIMIT 1",
                (generation, generation),
            ).fetchone()
            if row is not None:
                return True
        return False

    def max_generation(self) -> int:
        row = self.conn.execute(
            "SELECT max(coalesce(max(gen_added), 0), coalesce(max(gen_removed), 0)) FROM versions"
        ).fetchone()
        return int(row[0] or 0)

    def changes_for(self, generation: int) -> ChangeCounts:
        """What `generation` changes, by document: a live version added for it replaces a
        version it removes (updated, or unchanged when the content hash is the same, as
        under --rebuild), stands alone (added), or a removed version has none (removed)."""
        live_new: dict[str, str] = {}
        unchanged = 0
        for doc_id, gen_added, digest in self.conn.execute(
            "SELECT doc_id, gen_added, content_hash FROM versions WHERE gen_removed IS NULL"
        ):
            if gen_added >= generation:
                live_new[doc_id] = digest
            else:
                unchanged += 1
        gone = dict(
            self.conn.execute(
                "SELECT doc_id, content_hash FROM versions WHERE gen_removed = ?", (generation,)
            ).fetchall()
        )
        same = sum(1 for d, h in live_new.items() if gone.get(d) == h)
        updated = sum(1 for d in live_new if d in gone) - same
        return ChangeCounts(
            added=sum(1 for d in live_new if d not in gone),
            updated=updated,
            removed=sum(1 for d in gone if d not in live_new),
            unchanged=unchanged + same,
        )

    def has_spans(self, version_id: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM spans WHERE version_id=? LIMIT 1", (version_id,))
        return row.fetchone() is not None

    def add_version(
        self,
        *,
        doc_id: str,
        content_hash: str,
        title: str,
        source: str,
        text: str,
        spans: Sequence[tuple[int, int]],
        generation: int,
    ) -> int:
        """Record a new document version with its chunk spans (its passages to embed)."""
        cur = self.conn.execute(
            "INSERT INTO versions(doc_id, content_hash, title, source, n_passages, complete, "
            "pending_text, gen_added) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                doc_id,
                content_hash,
                title,
                source,
                len(spans),
                int(not spans),
                text if spans else None,
                generation,
            ),
        )
        version_id = cur.lastrowid
        assert version_id is not None
        self.conn.executemany(
            "INSERT INTO spans(version_id, ordinal, start_char, end_char) VALUES (?, ?, ?, ?)",
            [(version_id, n, start, end) for n, (start, end) in enumerate(spans)],
        )
        return version_id

    def remove_version(self, version_id: int, generation: int) -> None:
        """Hide a version from `generation` on; drop it outright if no reader ever saw it."""
        row = self.conn.execute(
            "SELECT gen_added FROM versions WHERE version_id=?", (version_id,)
        ).fetchone()
        if row is None:
            return
        self.conn.execute("DELETE FROM spans WHERE version_id=?", (version_id,))
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

    # -- the embed phase ----------------------------------------------------------------
    def pending_passage_count(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM spans s JOIN versions v ON s.version_id=v.version_id "
            "WHERE v.complete=0 AND v.gen_removed IS NULL AND NOT EXISTS (SELECT 1 FROM "
            "passages p WHERE p.version_id=s.version_id AND p.ordinal=s.ordinal)"
        ).fetchone()
        return int(row[0])

    def pending_passages(self) -> Iterator[NewPassage]:
        """Every chunk still to embed, in (version, ordinal) order; one document's text is
        read at a time, so memory stays bounded by the largest document."""
        self._complete_finished()
        pending = self.conn.execute(
            "SELECT version_id FROM versions WHERE complete=0 AND gen_removed IS NULL "
            "ORDER BY version_id"
        ).fetchall()
        for (version_id,) in pending:
            head = self.conn.execute(
                "SELECT doc_id, content_hash, title, pending_text FROM versions WHERE version_id=?",
                (version_id,),
            ).fetchone()
            spans = self.conn.execute(
                "SELECT s.ordinal, s.start_char, s.end_char FROM spans s WHERE s.version_id=? "
                "AND NOT EXISTS (SELECT 1 FROM passages p WHERE p.version_id=s.version_id "
                "AND p.ordinal=s.ordinal) ORDER BY s.ordinal",
                (version_id,),
            ).fetchall()
            doc_id, content_hash, title, text = head
            for ordinal, start, end in spans:
                yield NewPassage(
                    version_id, doc_id, content_hash, title, ordinal, start, end, text[start:end]
                )

    def _complete_finished(self) -> None:
        """Mark versions whose every passage is stored as complete (an older job could stop
        between its last passage and that mark)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE versions SET complete=1, pending_text=NULL WHERE complete=0 AND "
                "n_passages <= (SELECT count(*) FROM passages p WHERE "
                "p.version_id=versions.version_id)"
            )
            self.conn.execute(
                "DELETE FROM spans WHERE version_id IN (SELECT version_id FROM versions "
                "WHERE complete=1)"
            )

    def commit_batch(
        self, passages: Sequence[NewPassage], vectors: Vectors, generation: int
    ) -> None:
        """Passages and their vectors in one transaction; a document whose last passage is
        among them becomes complete in the same transaction."""
        with self.transaction():
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
            for version_id in sorted({p.version_id for p in passages}):
                done = self.conn.execute(
                    "UPDATE versions SET complete=1, pending_text=NULL WHERE version_id=? AND "
                    "n_passages <= (SELECT count(*) FROM passages WHERE version_id=?)",
                    (version_id, version_id),
                )
                if done.rowcount:
                    self.conn.execute("DELETE FROM spans WHERE version_id=?", (version_id,))
            self.set_meta("committed_batches", str(self.committed_batches() + 1))

    def purge(self, up_to_generation: int) -> None:
        """Delete rows no kept generation can see any more."""
        with self.transaction():
            self.conn.execute(
                "DELETE FROM vectors WHERE pk IN (SELECT pk FROM passages WHERE gen_removed <= ?)",
                (up_to_generation,),
            )
            self.conn.execute("DELETE FROM passages WHERE gen_removed <= ?", (up_to_generation,))
            self.conn.execute("DELETE FROM versions WHERE gen_removed <= ?", (up_to_generation,))
