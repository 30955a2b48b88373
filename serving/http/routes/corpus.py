"""Read-only corpus endpoints the console (and curl) use to show what a citation points at.

`GET /v1/corpus` says what is indexed, and what the last indexing run skipped and why;
`GET /v1/passages/{id}` gives one passage with its neighbours (what the agent's `open`
tool reads); `GET /v1/documents/{doc_id}` gives a whole document, its text rebuilt from
the passages at their character offsets so a citation's `start`/`end` index into it
directly. All sit behind the same keys as the rest of the API.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from retrieval.indexing.job_types import Skipped
from retrieval.types import Hit, Passage, Retriever
from serving.http.errors import NotFoundError
from serving.http.routes.deps import principal, services

router = APIRouter(dependencies=[Depends(principal)])


class PassageOut(BaseModel):
    passage_id: int
    doc_id: str
    ordinal: int
    title: str
    source: str
    start: int
    end: int
    text: str

    @classmethod
    def of(cls, p: Passage) -> PassageOut:
        return cls(
            passage_id=p.passage_id, doc_id=p.doc_id, ordinal=p.ordinal, title=p.title,
            source=p.source, start=p.start, end=p.end, text=p.text,
        )  # fmt: skip


SKIPPED_SHOWN = 200


class LastRunOut(BaseModel):
    """The last `thinkrag index` run over this index (it may have published nothing)."""

    finished_at: str
    generation: int
    published: bool
    documents_read: int
    added: int
    updated: int
    removed: int
    unchanged: int
    skipped: list[Skipped] = Field(description=f"The first {SKIPPED_SHOWN}, in walk order.")
    skipped_total: int


class CorpusInfo(BaseModel):
    """What the service searches. Index fields are None for in-memory passages."""

    label: str
    kind: Literal["index", "memory", "other"]
    mode: str | None = None
    generation: int | None = None
    documents: int | None = None
    passages: int | None = None
    embedder_id: str | None = None
    embedder_spec: str | None = None
    dim: int | None = None
    factory: str | None = None
    metric: str | None = None
    faiss_version: str | None = None
    created_at: str | None = None
    chunking: dict[str, int] | None = None
    last_run: LastRunOut | None = None  # None: in-memory passages, or an index built before
    # the report was kept


class PassageView(BaseModel):
    passage: PassageOut
    neighbours: list[PassageOut]  # in document order, the passage itself included


class DocumentView(BaseModel):
    doc_id: str
    title: str
    source: str
    text: str  # passages laid out at their offsets; gaps between them are blanks
    passages: list[PassageOut]


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=4000)
    k: int = Field(5, ge=1, le=50)


SearchMode = Literal["dense", "bm25", "hybrid"]


class ModeResult(BaseModel):
    mode: SearchMode
    hits: list[Hit] = Field(default_factory=list)
    seconds: float = 0.0
    unavailable: str | None = None  # why this mode cannot run on this server


class CompareResponse(BaseModel):
    query: str
    served_mode: str | None
    results: list[ModeResult]


def _mode_view(retriever: Retriever, mode: SearchMode) -> Retriever | str:
    """The served retriever searching in `mode` (a shallow copy: same index, embedder and
    embedding lock), or why it cannot."""
    from retrieval.search.memory import InMemoryRetriever
    from retrieval.search.retriever import FaissRetriever

    if isinstance(retriever, FaissRetriever):
        if mode != "bm25" and retriever.embedder is None:
            return (
                f"{mode} search needs the query embedder, and this server runs in bm25 mode; "
                "start it with --mode hybrid or dense"
            )
        view = copy.copy(retriever)
        view.mode = mode
        return view
    if isinstance(retriever, InMemoryRetriever) and mode == "bm25":
        return retriever
    return f"{mode} search needs a FAISS index; in-memory passages are searched with bm25 only"


def last_run_out(index_dir: Path) -> LastRunOut | None:
    from retrieval.indexing.last_run import read_last_run

    last = read_last_run(index_dir)
    if last is None:
        return None
    r = last.report
    return LastRunOut(
        finished_at=last.finished_at, generation=r.generation, published=r.published,
        documents_read=r.documents_read, added=r.added, updated=r.updated, removed=r.removed,
        unchanged=r.unchanged, skipped=r.skipped[:SKIPPED_SHOWN],
        skipped_total=len(r.skipped),
    )  # fmt: skip


def corpus_info(retriever: Retriever, label: str, *, with_last_run: bool = False) -> CorpusInfo:
    from retrieval.search.memory import InMemoryRetriever
    from retrieval.search.retriever import FaissRetriever

    if isinstance(retriever, FaissRetriever):
        m = retriever.reader.manifest
        last = last_run_out(retriever.reader.index_dir) if with_last_run else None
        return CorpusInfo(
            label=label, kind="index", mode=retriever.mode, generation=m.generation,
            documents=m.documents, passages=m.passages, embedder_id=m.embedder_id,
            embedder_spec=m.embedder_spec, dim=m.dim, factory=m.factory, metric=m.metric,
            faiss_version=m.faiss_version, created_at=m.created_at,
            chunking=m.chunking.model_dump(), last_run=last,
        )  # fmt: skip
    if isinstance(retriever, InMemoryRetriever):
        return CorpusInfo(label=label, kind="memory", mode="bm25")
    return CorpusInfo(label=label, kind="other")


def document_text(passages: Sequence[Passage]) -> str:
    """The document's text from its (possibly overlapping) passages, each at its offsets."""
    out = ""
    for p in sorted(passages, key=lambda p: (p.start, p.ordinal)):
        if p.start >= len(out):
            out += " " * (p.start - len(out)) + p.text
        elif p.start + len(p.text) > len(out):
            out += p.text[len(out) - p.start :]
    return out


@router.get("/v1/corpus", response_model=CorpusInfo)
async def corpus(request: Request) -> CorpusInfo:
    svc = services(request)
    retriever, label = svc.components.retriever, svc.components.index_label
    return await asyncio.to_thread(corpus_info, retriever, label, with_last_run=True)


@router.post("/v1/corpus/compare", response_model=CompareResponse)
async def compare(body: CompareRequest, request: Request) -> CompareResponse:
    """The same query through dense, bm25 and hybrid search, for the console's playground."""
    retriever = services(request).components.retriever
    results = []
    for mode in ("dense", "bm25", "hybrid"):
        view = _mode_view(retriever, mode)
        if isinstance(view, str):
            results.append(ModeResult(mode=mode, unavailable=view))
            continue
        started = time.perf_counter()
        hits = await asyncio.to_thread(view.search, body.query, body.k)
        results.append(ModeResult(mode=mode, hits=hits, seconds=time.perf_counter() - started))
    served = corpus_info(retriever, "").mode
    return CompareResponse(query=body.query, served_mode=served, results=results)


@router.get("/v1/passages/{passage_id}", response_model=PassageView)
async def passage(
    passage_id: int, request: Request, window: int = Query(1, ge=0, le=5)
) -> PassageView:
    retriever = services(request).components.retriever
    found = await asyncio.to_thread(retriever.get_passage, passage_id)
    if found is None:
        raise NotFoundError(
            f"passage {passage_id} is not in the index; it may have been removed by a "
            "re-index: search again with POST /v1/search"
        )
    around = await asyncio.to_thread(retriever.neighbours, passage_id, window) if window else []
    return PassageView(
        passage=PassageOut.of(found), neighbours=[PassageOut.of(p) for p in around or [found]]
    )


@router.get("/v1/documents/{doc_id:path}", response_model=DocumentView)
async def document(doc_id: str, request: Request) -> DocumentView:
    retriever = services(request).components.retriever
    passages = await asyncio.to_thread(retriever.document_passages, doc_id)
    if not passages:
        raise NotFoundError(
            f"document {doc_id!r} is not in the index; take the doc_id from a search hit "
            "or a citation"
        )
    first = passages[0]
    return DocumentView(
        doc_id=doc_id, title=first.title, source=first.source, text=document_text(passages),
        passages=[PassageOut.of(p) for p in sorted(passages, key=lambda p: p.ordinal)],
    )  # fmt: skip
