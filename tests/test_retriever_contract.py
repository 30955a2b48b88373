"""One contract, two implementations: the real FAISS retriever (dense, BM25, hybrid) and the
in-memory fake must behave alike, so agent tests written against the fake stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.search.memory import InMemoryRetriever
from retrieval.search.retriever import load_retriever
from retrieval.types import Retriever
from testing.contract import RetrieverContract
from testing.embedder import HashEmbedder
from tests.fixtures.indexes import contract_passages

KINDS = ["faiss-dense", "faiss-bm25", "faiss-hybrid", "memory"]


@pytest.fixture(params=KINDS)
def retriever(request: pytest.FixtureRequest, contract_index: Path) -> Retriever:
    if request.param == "memory":
        return InMemoryRetriever(contract_passages(contract_index))
    mode = request.param.split("-")[1]
    return load_retriever(contract_index, mode=mode, embedder=HashEmbedder())


class TestRetrieverContract(RetrieverContract):
    """Every kind above runs the shared contract."""
