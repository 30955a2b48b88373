"""The model-free reading of evidence: the answer sentence is found (English and Chinese),
and a draft that pastes passages back is told apart from a real answer."""

from __future__ import annotations

from agent.events import Source
from agent.evidence import is_dump, likely_span, sentences

SIZE = (
    "The Zorblax-9 model was released in March. Zorblax-9 has 412 billion parameters in "
    "total, of which 19 billion are activated for each token. It was trained on 9 trillion "
    "tokens of text and code, mostly in English and Esperanto."
)
LINEAGE = (
    "Quillmind-R starts from the Zorblax-9 base model and shares its architecture; it "
    "differs only in post-training with reinforcement learning on puzzles."
)
CHINESE = "泽布拉克斯九号于三月发布。它的总参数为四千一百二十亿，每个词元激活一百九十亿参数。"


def _source(number: int, text: str) -> Source:
    return Source(
        number=number, title=f"doc {number}", source=f"doc{number}.md", passage_id=number,
        doc_id=f"d{number}", start=0, end=len(text), text=text,
    )  # fmt: skip


SOURCES = {1: _source(1, LINEAGE), 2: _source(2, SIZE), 3: _source(3, CHINESE)}


def test_the_sentence_stating_the_figure_is_picked() -> None:
    span = likely_span("How many parameters does Quillmind-R activate per token?", SOURCES, [1, 2])
    assert span is not None and span.number == 2
    assert "19 billion are activated" in span.text


def test_chinese_questions_find_chinese_sentences() -> None:
    span = likely_span("泽布拉克斯九号每个词元激活多少参数？", SOURCES, [1, 2, 3])
    assert span is not None and span.number == 3 and "一百九十亿" in span.text


def test_sentences_split_on_both_punctuations() -> None:
    assert len(sentences(SIZE)) == 3
    assert len(sentences(CHINESE)) == 2


def test_a_pasted_passage_is_a_dump_and_an_answer_is_not() -> None:
    texts = [s.text for s in SOURCES.values()]
    pasted = f"{SIZE} [2] {LINEAGE} [1]"
    assert is_dump(pasted, texts)
    answer = (
        "Quillmind-R is built on Zorblax-9 [1], so like that model it activates about 19 "
        "billion of its 412 billion parameters for each token [2]. The rest of its design is "
        "inherited unchanged from the base model, according to the passages found here."
    )
    assert not is_dump(answer, texts)
    assert not is_dump("19 billion [2].", texts)  # short answers are never dumps
