"""bm25_tokenize: English stemming/stopwords, Chinese segmentation, use with bm25s."""

from __future__ import annotations

from retrieval.terms import bm25_tokenize


def test_english_lowercase_stopwords_stems() -> None:
    [tokens] = bm25_tokenize(["The Runners were RUNNING to the Stations in 2019!"])
    assert tokens == ["runner", "were", "run", "station", "2019"]


def test_chinese_segmentation_drops_punctuation_and_function_words() -> None:
    [tokens] = bm25_tokenize(["大熊猫生活在四川的山区，吃竹子。"])
    assert "大熊猫" in tokens and "熊猫" in tokens and "竹子" in tokens
    assert "，" not in tokens and "。" not in tokens and "的" not in tokens
    assert "熊" in tokens  # characters of multi-character words are kept too


def test_mixed_text_and_empty() -> None:
    assert bm25_tokenize(["", "的", "..."]) == [[], [], []]
    [tokens] = bm25_tokenize(["GPU 推理 servers"])
    assert tokens[0] == "gpu" and tokens[-1] == "server" and "推理" in tokens


def test_works_with_bm25s_in_both_languages() -> None:
    import bm25s

    corpus = [
        "大熊猫主要生活在四川和陕西的山区，以竹子为食。",
        "长城是中国古代的军事防御工程。",
        "Solar panels convert sunlight into electricity.",
        "The stock market fell sharply on Monday.",
    ]
    model = bm25s.BM25()
    model.index(bm25_tokenize(corpus), show_progress=False)
    for query, want in (("熊猫吃什么？", 0), ("长城是谁修建的", 1), ("electric solar panel", 2)):
        docs, scores = model.retrieve(bm25_tokenize([query]), k=2, show_progress=False)
        assert int(docs[0, 0]) == want and scores[0, 0] > scores[0, 1]
