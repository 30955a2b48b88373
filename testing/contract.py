"""The retriever contract: behaviour every `Retriever` must share, as a reusable pytest suite.

The real FAISS retriever and the in-memory fake run it so agent tests written against the
fake stay true; a user's own retriever runs it the same way: subclass `RetrieverContract`
and provide a `retriever` fixture that serves `contract_documents()`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from retrieval.indexing.job_types import content_hash
from retrieval.types import Document, Hit, Passage, Retriever, SearchFilters

# Small corpus for the retriever contract suite: each document has words found nowhere else.
CONTRACT_DOCS: tuple[tuple[str, str, str, str], ...] = (
    (
        "moe",
        "Mixture of experts",
        "notes/moe.md",
        "A mixture of experts model routes each token to a few experts. "
        "Total parameters count every expert, active parameters only the routed ones. "
        "The router picks two experts per token in many designs. "
        "Sparse activation keeps the compute per token low. "
        "Load balancing losses stop the router from collapsing onto one expert. "
        "Expert parallelism spreads experts over many accelerators.",
    ),
    (
        "rag",
        "Retrieval augmented generation",
        "notes/rag.md",
        "Retrieval augmented generation fetches passages from an index before answering. "
        "A retriever embeds the question and searches a vector index. "
        "Citations point the reader back at the retrieved passages.",
    ),
    (
        "jevons",
        "Jevons paradox",
        "econ/jevons.txt",
        "The Jevons paradox says cheaper inference can raise total compute demand. "
        "Coal efficiency once increased coal consumption in Britain.",
    ),
    (
        "cuda",
        "CUDA moat",
        "econ/cuda.txt",
        "The CUDA software moat keeps developers on one vendor's accelerators. "
        "Kernels, libraries and tooling accumulated over many years.",
    ),
    (
        "zh-moe",
        "混合专家模型",
        "zh/moe.md",
        "混合专家模型把每个词元路由到少数几个专家。总参数量包括所有专家，激活参数量只计算被选中的专家。",
    ),
)


def make_document(doc_id: str, title: str, source: str, text: str) -> Document:
    return Document(
        doc_id=doc_id,
        title=title,
        text=text,
        source=source,
        metadata={"content_hash": content_hash(title, text)},
    )


def contract_documents() -> list[Document]:
    return [make_document(*row) for row in CONTRACT_DOCS]


class RetrieverContract:
    """Subclass in a test module and define a `retriever` fixture over `contract_documents()`."""

    def test_implements_protocol(self, retriever: Retriever) -> None:
        assert isinstance(retriever, Retriever)

    def test_search_finds_the_document_that_holds_the_words(self, retriever: Retriever) -> None:
        hits = retriever.search("router experts active parameters", k=3)
        assert hits and all(isinstance(h, Hit) for h in hits)
        assert hits[0].doc_id == "moe"
        assert len(hits) <= 3
        assert len({h.passage_id for h in hits}) == len(hits)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)

    def test_hits_carry_exact_source_offsets(self, retriever: Retriever) -> None:
        texts = {d.doc_id: d for d in contract_documents()}
        for hit in retriever.search("Jevons paradox coal consumption", k=5):
            doc = texts[hit.doc_id]
            assert doc.text[hit.start : hit.end] == hit.text
            assert hit.title == doc.title and hit.source == doc.source

    def test_chinese_query(self, retriever: Retriever) -> None:
        hits = retriever.search("激活参数量", k=3)
        assert hits and hits[0].doc_id == "zh-moe"

    def test_filters_restrict_results(self, retriever: Retriever) -> None:
        only_rag = retriever.search(
            "experts passages index", k=5, filters=SearchFilters(doc_ids=frozenset({"rag"}))
        )
        assert only_rag and {h.doc_id for h in only_rag} == {"rag"}
        econ = retriever.search(
            "compute accelerators", k=5, filters=SearchFilters(source_prefix="econ/")
        )
        assert econ and all(h.source.startswith("econ/") for h in econ)
        none = retriever.search(
            "experts", k=5, filters=SearchFilters(doc_ids=frozenset({"missing"}))
        )
        assert none == []

    def test_k_zero_and_empty_query(self, retriever: Retriever) -> None:
        assert retriever.search("experts", k=0) == []
        assert retriever.search("   ", k=5) == []

    def test_get_passage_round_trips(self, retriever: Retriever) -> None:
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

    def test_document_passages_are_ordered_and_cover_the_text(self, retriever: Retriever) -> None:
        passages = retriever.document_passages("moe")
        assert len(passages) >= 3
        assert [p.ordinal for p in passages] == list(range(len(passages)))
        assert passages[0].start == 0
        moe = next(d for d in contract_documents() if d.doc_id == "moe")
        assert passages[-1].end >= len(moe.text.rstrip()) - 1
        assert all(moe.text[p.start : p.end] == p.text for p in passages)
        assert retriever.document_passages("no-such-doc") == []

    def test_neighbours_window(self, retriever: Retriever) -> None:
        passages = retriever.document_passages("moe")
        middle = passages[1]
        around = retriever.neighbours(middle.passage_id, window=1)
        assert [p.ordinal for p in around] == [0, 1, 2]
        assert [p.ordinal for p in retriever.neighbours(passages[0].passage_id, window=1)] == [0, 1]
        assert retriever.neighbours(middle.passage_id, window=0) == [middle]
        assert retriever.neighbours(999, window=1) == []

    def test_concurrent_searches_agree(self, retriever: Retriever) -> None:
        queries = ["router experts", "Jevons coal", "CUDA moat", "激活参数量"] * 8
        expected = {q: [h.passage_id for h in retriever.search(q, k=3)] for q in set(queries)}
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda q: (q, retriever.search(q, k=3)), queries))
        for query, hits in results:
            assert [h.passage_id for h in hits] == expected[query]
