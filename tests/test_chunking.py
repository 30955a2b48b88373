"""chunk_text: sentence packing, exact offsets, overlap, CJK and overlong sentences."""

from __future__ import annotations

from itertools import pairwise

import pytest

from retrieval.indexing.chunking import Span, chunk_text, count_tokens, split_sentences


def _texts(text: str, spans: list[Span]) -> list[str]:
    return [text[s.start : s.end] for s in spans]


def _check_offsets(text: str, spans: list[Span]) -> None:
    for span in spans:
        piece = text[span.start : span.end]
        assert piece and piece == piece.strip()


def test_english_sentences_and_abbreviations() -> None:
    text = (
        "Dr. Smith met J. R. R. Tolkien in the U.S. capital. Was it 3.5 hours?  Yes!\n"
        "A new line starts here"
    )
    assert _texts(text, split_sentences(text)) == [
        "Dr. Smith met J. R. R. Tolkien in the U.S. capital.",
        "Was it 3.5 hours?",
        "Yes!",
        "A new line starts here",
    ]


def test_packs_whole_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {w} has exactly six words." for w in "abcdefghij"]
    text = " ".join(sentences)
    # 7 tokens per sentence ("six words" + letter): 3 fit in 21 <= 22; overlap one sentence.
    spans = chunk_text(text, max_tokens=22, overlap_tokens=7)
    _check_offsets(text, spans)
    pieces = _texts(text, spans)
    assert all(count_tokens(p) <= 22 for p in pieces)
    assert pieces[0] == " ".join(sentences[:3])
    assert pieces[1] == " ".join(sentences[2:5])  # starts with the last sentence of pieces[0]
    assert pieces[-1].endswith(sentences[-1])
    covered = "".join(text[s.start : s.end] for s in spans)
    assert all(s in covered for s in sentences)


def test_no_overlap_partitions_text() -> None:
    text = "One two three. Four five six. Seven eight nine. Ten eleven twelve."
    spans = chunk_text(text, max_tokens=6, overlap_tokens=0)
    assert _texts(text, spans) == [
        "One two three. Four five six.",
        "Seven eight nine. Ten eleven twelve.",
    ]


def test_chinese_exact_offsets_and_clause_split() -> None:
    text = (
        "  北京是中国的首都。上海是最大的城市！\n\n"
        "长江很长，黄河也很长，珠江在南方，这一句话比预算还要长得多。Python 很流行。"
    )
    spans = chunk_text(text, max_tokens=12, overlap_tokens=0)
    _check_offsets(text, spans)
    pieces = _texts(text, spans)
    assert pieces[0] == "北京是中国的首都。"
    assert pieces[1].startswith("上海是最大的城市！")
    assert all(count_tokens(p) <= 12 for p in pieces)
    # the 30-character sentence is split at its commas, never mid-word when avoidable
    assert "黄河也很长，珠江在南方，" in pieces
    assert pieces[-1].endswith("Python 很流行。")
    assert count_tokens("长江很长，") == 4 and count_tokens("Python 很流行。") == 4


def test_mixed_overlap_uses_whole_sentences() -> None:
    text = "第一句话。第二句话。第三句话。第四句话。"
    spans = chunk_text(text, max_tokens=8, overlap_tokens=4)
    assert _texts(text, spans) == [
        "第一句话。第二句话。",
        "第二句话。第三句话。",
        "第三句话。第四句话。",
    ]


def test_overlong_sentence_is_hard_split_by_tokens() -> None:
    words = [f"w{i}" for i in range(25)]
    text = "Start " + " ".join(words) + " end."
    spans = chunk_text(text, max_tokens=10, overlap_tokens=2)
    _check_offsets(text, spans)
    pieces = _texts(text, spans)
    assert [count_tokens(p) for p in pieces] == [10, 10, 7]
    assert pieces[0].startswith("Start w0") and pieces[-1].endswith("w24 end.")
    # consecutive hard pieces tile the sentence exactly
    assert all(a.end <= b.start for a, b in pairwise(spans))
    long_cjk = "这" * 25
    assert [s.end - s.start for s in chunk_text(long_cjk, max_tokens=10, overlap_tokens=0)] == [
        10,
        10,
        5,
    ]


def test_deterministic_and_empty() -> None:
    text = "Alpha beta. Gamma delta! " * 50
    assert chunk_text(text, max_tokens=20) == chunk_text(text, max_tokens=20)
    assert chunk_text("") == [] and chunk_text("  \n\n ") == []
    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk_text("x", max_tokens=10, overlap_tokens=-1)
    # an overlap larger than the budget is capped at half of it instead of looping
    spans = chunk_text("Aa bb cc. Dd ee ff. Gg hh ii. Jj kk ll.", max_tokens=6, overlap_tokens=50)
    assert len(spans) == 3
