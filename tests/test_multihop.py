"""The model-free multi-hop strategy reaches a second hop that only the first hop names."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.config import AgentConfig
from agent.events import ToolResultEvent
from agent.llm.client import OpenAIClient
from agent.runner import ResearchAgent
from retrieval.search.memory import InMemoryRetriever
from retrieval.search.multihop import (
    MultiHopConfigError,
    MultiHopRetriever,
    entity_spans,
    question_entities,
    title_mentioned,
)
from retrieval.types import Passage, Retriever
from testing.scripted import ScriptedModelServer, ScriptedTurn
from tests.agent_support import call, collect, finished

# Made-up two-hop world: the question names the kazoo; only the kazoo passage names its
# inventor, and the inventor's passage shares no word with the question.
QUESTION = "Which river runs through the birthplace of the inventor of the glass kazoo?"
DOCS = [
    (
        "kazoo",
        "Glass kazoo",
        "The glass kazoo, a kazoo of blown glass, was made by Orla Penhallow.",
    ),
    ("orla", "Orla Penhallow", "Penhallow grew up in Marrowick, a mill town by Tessel water."),
    ("river1", "Grey river", "A river runs through many a town; this one is grey and slow."),
    ("river2", "Summer festival", "The festival by the river draws artists every summer."),
    ("birth", "Birthplace museum", "The birthplace museum of an inventor shows old tools."),
    ("noise", "Marching bands", "Bands march with drums and brass instruments in June."),
]


def corpus() -> InMemoryRetriever:
    return InMemoryRetriever(
        [
            Passage(i, doc, 0, title, text, f"{doc}.txt", 0, len(text))
            for i, (doc, title, text) in enumerate(DOCS)
        ]
    )


def doc_ids(retriever: Retriever, k: int) -> list[str]:
    return [hit.doc_id for hit in retriever.search(QUESTION, k=k)]


def test_single_shot_misses_the_second_hop() -> None:
    base = corpus()
    assert "kazoo" in doc_ids(base, 3)
    assert "orla" not in doc_ids(base, len(DOCS))


def test_multihop_finds_the_second_hop_within_the_budget() -> None:
    hops = MultiHopRetriever(corpus(), first_k=4, seeds=2)
    found = doc_ids(hops, 3)
    assert len(found) <= 3
    assert {"kazoo", "orla"} <= set(found)
    # scores are the fused ones and strictly ordered
    scores = [hit.score for hit in hops.search(QUESTION, k=3)]
    assert scores == sorted(scores, reverse=True)


def test_multihop_passes_through_passage_access() -> None:
    base = corpus()
    hops = MultiHopRetriever(base)
    assert isinstance(hops, Retriever)
    assert hops.get_passage(1) == base.get_passage(1)
    assert hops.document_passages("orla") == base.document_passages("orla")
    assert hops.neighbours(0) == base.neighbours(0)
    assert hops.search("zzz unknown words", k=5) == []


def test_entity_spans_and_title_links() -> None:
    text = (
        'Tower and Bell is a 1931 play starring Orla Penhallow, based on "Letters From Marrowick".'
    )
    spans = entity_spans(text, exclude="Which play was Tower and Bell?")
    assert "Orla Penhallow" in spans
    assert "Letters From Marrowick" in spans
    assert "1931" in spans
    assert "Tower and Bell" not in spans  # already in the question
    assert title_mentioned("Orla Penhallow", text)
    assert title_mentioned("Tower and Bell (1931 play)", text)  # disambiguation dropped
    assert not title_mentioned("Penhallow Bay", text)


def test_question_entities_drop_the_interrogative_opening() -> None:
    assert question_entities("How many parameters does DeepSeek-R1 activate?") == ["DeepSeek-R1"]
    assert question_entities('Where was "Letters From Marrowick" written in 1931?') == [
        "Letters From Marrowick",
        "1931",
    ]
    assert question_entities("what is a mixture of experts?") == []


def test_question_round_brings_the_passage_about_the_name() -> None:
    # The question's other words ("river", "birthplace", "inventor") outrank the passage
    # about Orla Penhallow; searching the name alone puts it in the budget.
    question = "Which river runs through the birthplace of the inventor Orla Penhallow?"
    plain = [hit.doc_id for hit in corpus().search(question, k=2)]
    named = MultiHopRetriever(corpus(), expansions=("question",), question_entity_weight=2.0)
    assert "orla" not in plain
    assert "orla" in [hit.doc_id for hit in named.search(question, k=2)]


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(MultiHopConfigError, match="unknown expansion"):
        MultiHopRetriever(corpus(), expansions=("links", "magic"))
    with pytest.raises(MultiHopConfigError, match="seeds"):
        MultiHopRetriever(corpus(), seeds=0)


@pytest.mark.parametrize("multihop", [False, True])
async def test_agent_search_tool_can_use_the_strategy(
    scripted_model: Callable[..., ScriptedModelServer], multihop: bool
) -> None:
    server = scripted_model(
        [
            ScriptedTurn(tool_calls=(call("search", query=QUESTION),)),
            ScriptedTurn(content="Tessel [1]."),
        ]
    )
    config = AgentConfig(top_k=3, multihop_search=multihop)
    agent = ResearchAgent(OpenAIClient(server.base_url, "scripted"), corpus(), config)
    events = await collect(agent.run(QUESTION, thread_id="t", run_id="r"))
    await agent.aclose()
    finished(events)
    (result,) = [e for e in events if isinstance(e, ToolResultEvent)]
    found = {hit.doc_id for hit in result.hits}
    assert len(found) <= 3 and "kazoo" in found
    assert ("orla" in found) is multihop  # only the strategy reaches the second hop
