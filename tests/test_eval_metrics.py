"""Metric functions against hand-checked cases, and the paired bootstrap's behaviour."""

from __future__ import annotations

import pytest

from evaluation.compare import ComparisonError, paired_bootstrap
from evaluation.methods import short_answer
from evaluation.metrics import (
    all_gold,
    all_gold_at_k,
    citation_precision,
    citation_validity,
    exact_match,
    mean,
    normalize_answer,
    recall_at_k,
    supporting_recall,
    token_f1,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   Apple,  a day ", "apple day"),
        ("Theatre of the Absurd", "theatre of absurd"),  # "the" only as a whole word
        ("U.S.A.", "usa"),
        ("", ""),
        ("Annals", "annals"),  # "an" inside a word stays
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_exact_match_uses_any_alias() -> None:
    assert exact_match("the Keeper of Lanterns.", ["Keeper of Lanterns"]) == 1.0
    assert exact_match("NYC", ["New York City", "nyc"]) == 1.0
    assert exact_match("New York", ["New York City"]) == 0.0
    assert exact_match("anything", []) == 0.0


def test_token_f1_hand_checked() -> None:
    # pred tokens: new york ; gold: new york city -> p=1, r=2/3, f1=0.8
    assert token_f1("New York", ["New York City"]) == pytest.approx(0.8)
    # best alias wins: second alias matches exactly
    assert token_f1("New York", ["New York City", "new york"]) == pytest.approx(1.0)
    # repeated tokens count by multiplicity: pred "a b b" vs gold "b c" -> same=1, p=1/3, r=1/2
    assert token_f1("x y y", ["y z"]) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert token_f1("completely different", ["answer"]) == 0.0


def test_token_f1_edge_cases() -> None:
    assert token_f1("", ["Paris"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both normalise to nothing
    assert token_f1("no way", ["no"]) == 0.0  # yes/no must match exactly
    assert token_f1("No.", ["no"]) == 1.0
    assert token_f1("Paris", []) == 0.0


def test_retrieval_recall() -> None:
    gold = {"g1", "g2"}
    assert supporting_recall(["x", "g1"], gold) == 0.5
    assert supporting_recall(["g2", "g1", "g1"], gold) == 1.0
    assert supporting_recall([], set()) == 1.0
    assert all_gold(["g1", "x", "g2"], gold)
    assert not all_gold(["g1"], gold)
    ranked = ["a", "g1", "b", "g2"]
    assert recall_at_k(ranked, gold, 2) == 0.5
    assert recall_at_k(ranked, gold, 4) == 1.0
    assert not all_gold_at_k(ranked, gold, 3)
    assert all_gold_at_k(ranked, gold, 4)


def test_citation_metrics() -> None:
    gold = {"g1", "g2"}
    retrieved = {"g1", "x", "y"}
    cited = ["g1", "x", "z"]
    assert citation_precision(cited, gold) == pytest.approx(1 / 3)
    assert citation_validity(cited, retrieved) == pytest.approx(2 / 3)
    assert citation_precision([], gold) is None
    assert citation_validity([], retrieved) is None


def test_mean_skips_none() -> None:
    assert mean([1.0, None, 0.0]) == 0.5
    assert mean([None]) is None


def test_paired_bootstrap_detects_a_clear_win() -> None:
    ids = [f"q{i}" for i in range(60)]
    a = {q: 0.0 for q in ids}
    b = {q: 1.0 if i % 3 else 0.0 for i, q in enumerate(ids)}  # B right on 2/3 more
    result = paired_bootstrap(a, b, metric="em", samples=500, seed=1)
    assert result.n == 60
    assert result.diff == pytest.approx(40 / 60)
    assert result.ci_low > 0.4 and result.ci_high <= 1.0
    assert result.significant
    assert result.p_not_better == 0.0


def test_paired_bootstrap_same_runs_not_significant() -> None:
    scores = {f"q{i}": float(i % 2) for i in range(40)}
    result = paired_bootstrap(scores, dict(scores), samples=200)
    assert result.diff == 0.0 and result.ci_low == 0.0 and result.ci_high == 0.0
    assert not result.significant


def test_paired_bootstrap_uses_shared_ids_only() -> None:
    result = paired_bootstrap({"a": 0.0, "b": 1.0}, {"b": 1.0, "c": 0.0}, samples=50)
    assert result.n == 1 and result.diff == 0.0
    with pytest.raises(ComparisonError, match="share no question ids"):
        paired_bootstrap({"a": 1.0}, {"b": 1.0})


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Paris [1]\nParis is the capital of France [1][2].", "Paris"),
        ("<think>Maybe Lyon?</think>\nParis.", "Paris"),
        ("Answer: Keeper of Lanterns [3]", "Keeper of Lanterns"),
        ("The answer is: 1901 to 1911", "1901 to 1911"),
        ("The answer is no.", "no"),
        ("[n] Marrowick County (multihop:edf37d2e73f40c95)", "Marrowick County"),
        ("Tessel Field (IATA: TSL)", "Tessel Field (IATA: TSL)"),
        ("The best answer to the question is:\n\nGlasswing [2]", "Glasswing"),
        ("The best answer is:", "The best answer is:"),  # nothing follows: kept, scored 0
        ("Answers vary by source", "Answers vary by source"),  # not an answer prefix
        ("", ""),
    ],
)
def test_short_answer_takes_the_scoreable_span(reply: str, expected: str) -> None:
    assert short_answer(reply) == expected
