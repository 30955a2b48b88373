"""One contract, two implementations: the real FAISS retriever (dense, BM25, hybrid) and the
in-memory fake must behave alike, so agent tests written against the fake stay true."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from retrieval.memory import InMemoryRetriever
from retrieval.retriever import load_retriever
from retrieval.types import Hit, Passage, Retriever, SearchFilters
from tests.fixtures.indexes import HashEmbedder, contract_documents, contract_passages

KINDS = ["faiss-dense", "faiss-bm25", "faiss-hybrid", "memory"]


@pytest.fixture(params=KINDS)
def retriever(request: pytest.FixtureRequest, contract_index: Path) -> Retriever:
    if request.param == "memory":
        return InMemoryRetriever(contract_passages(contract_index))
    mode = request.param.split("-")[1]
    return load_retriever(contract_index, mode=mode, embedder=HashEmbedder())


def test_implements_protocol(retriever: Retriever) -> None:
    assert isinstance(retriever, Retriever)


def test_search_finds_the_document_that_holds_the_words(retriever: Retriever) -> None:
    hits = retriever.search("router experts active parameters", k=3)
    assert hits and all(isinstance(h, Hit) for h in hits)
    assert hits[0].doc_id == "moe"
    assert len(hits) <= 3
    assert len({h.passage_id for h in hits}) == len(hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_hits_carry_exact_source_offsets(retriever: Retriever) -> None:
    texts = {d.doc_id: d for d in contract_documents()}
    for hit in retriever.search("Jevons paradox coal consumption", k=5):
        doc = texts[hit.doc_id]
        assert doc.text[hit.start : hit.end] == hit.text
        assert hit.title == doc.title and hit.source == doc.source


def test_chinese_query(retriever: Retriever) -> None:
    hits = retriever.search("激活参数量", k=3)
    assert hits and hits[0].doc_id == "zh-moe"


def test_filters_restrict_results(retriever: Retriever) -> None:
    only_rag = retriever.search(
        "experts passages index", k=5, filters=SearchFilters(doc_ids=frozenset({"rag"}))
    )
    assert only_rag and {h.doc_id for h in only_rag} == {"rag"}
    econ = retriever.search(
        "compute accelerators", k=5, filters=SearchFilters(source_prefix="econ/")
    )
    assert econ and all(h.source.startswith("econ/") for h in econ)
    none = retriever.search("experts", k=5, filters=SearchFilters(doc_ids=frozenset({"missing"})))
    assert none == []


def test_k_zero_and_empty_query(retriever: Retriever) -> None:
    assert retriever.search("experts", k=0) == []
    assert retriever.search("   ", k=5) == []


def test_get_passage_round_trips(retriever: Retriever) -> None:
    hit = retriever.search("CUDA software moat", k=1)[0]
    passage = retriever.get_passage(hit.passage_id)
    assert isinstance(passage, Passage)
    assert (passage.doc_id, passage.text, passage.start, passage.end) == (
        hit.doc_id,
        hit.text,
        hit.start,
        hit.end,
    )
    assert retriever.get_passage(12345) is None


def test_document_passages_are_ordered_and_cover_the_text(retriever: Retriever) -> None:
    passages = retriever.document_passages("moe")
    assert len(passages) >= 3
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    assert passages[0].start == 0
    moe = next(d for d in contract_documents() if d.doc_id == "moe")
    assert passages[-1].end >= len(moe.text.rstrip()) - 1
    assert all(moe.text[p.start : p.end] == p.text for p in passages)
    assert retriever.document_passages("no-such-doc") == []


def test_neighbours_window(retriever: Retriever) -> None:
    passages = retriever.document_passages("moe")
    middle = passages[1]
    around = retriever.neighbours(middle.passage_id, window=1)
    assert [p.ordinal for p in around] == [0, 1, 2]
    assert [p.ordinal for p in retriever.neighbours(passages[0].passage_id, window=1)] == [0, 1]
    assert retriever.neighbours(middle.passage_id, window=0) == [middle]
    assert retriever.neighbours(999, window=1) == []


def test_concurrent_searches_agree(retriever: Retriever) -> None:
    queries = ["router experts", "Jevons coal", "CUDA moat", "激活参数量"] * 8
    expected = {q: [h.passage_id for h in retriever.search(q, k=3)] for q in set(queries)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda q: (q, retriever.search(q, k=3)), queries))
    for query, hits in results:
        assert [h.passage_id for h in hits] == expected[query]
