"""The demo corpus is well formed, and the multi-hop eval loader parses, pools and fails clearly."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from corpora.paths import EVAL_DIR_ENV, demo_corpus_dir, shared_eval_dir
from evaluation.dataset import (
    EvalQuestion,
    gold_ids,
    passage_key,
    pool_passages,
    pooled_documents,
    read_questions,
    sample_questions,
    write_pooled_jsonl,
)
from evaluation.errors import EvalDataFormatError, EvalDataMissingError, UnknownDatasetError

CJK = re.compile(r"[\u4e00-\u9fff]")
FORMATS = {".md", ".txt", ".html", ".jsonl"}
EVAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "eval"


def _demo_files() -> list[Path]:
    return sorted(p for p in demo_corpus_dir().rglob("*") if p.is_file())


def _jsonl_records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


# ---------------------------------------------------------------- demo corpus


def test_demo_corpus_has_between_30_and_60_documents() -> None:
    files = _demo_files()
    records = sum(len(_jsonl_records(p)) for p in files if p.suffix == ".jsonl")
    documents = sum(1 for p in files if p.suffix != ".jsonl") + records
    assert 30 <= documents <= 60, documents


def test_demo_corpus_uses_only_supported_formats_and_all_of_them() -> None:
    suffixes = Counter(p.suffix for p in _demo_files())
    assert set(suffixes) == FORMATS, suffixes
    assert suffixes[".md"] > suffixes[".txt"] + suffixes[".html"] + suffixes[".jsonl"]


def test_demo_corpus_is_bilingual_with_chinese_punctuation() -> None:
    files = _demo_files()
    chinese = [p for p in files if CJK.search(p.read_text("utf-8"))]
    english = [p for p in files if p not in chinese]
    assert len(chinese) >= 12, [p.name for p in chinese]
    assert len(english) >= 2 * len(chinese) - 6  # roughly two thirds English
    assert {p.suffix for p in chinese} >= {".md", ".txt", ".html"}
    for path in chinese:
        text = path.read_text("utf-8")
        assert "。" in text and "，" in text, f"{path.name} lacks Chinese punctuation"


def test_demo_jsonl_records_have_id_title_text_and_unique_ids() -> None:
    ids: list[str] = []
    for path in (p for p in _demo_files() if p.suffix == ".jsonl"):
        records = _jsonl_records(path)
        assert len(records) >= 2, f"{path.name} should hold several records"
        for record in records:
            assert set(record) == {"id", "title", "text"}, record.keys()
            assert all(isinstance(record[k], str) and record[k] for k in record)
            ids.append(str(record["id"]))
    assert len(ids) == len(set(ids))


def test_demo_html_has_title_and_only_markup_in_script_and_style() -> None:
    pages = [p for p in _demo_files() if p.suffix == ".html"]
    assert len(pages) >= 3
    for path in pages:
        soup = BeautifulSoup(path.read_text("utf-8"), "lxml")
        assert soup.title is not None and soup.title.get_text(strip=True)
        assert soup.find("script") is not None and soup.find("style") is not None
        code_lines = set()
        for tag in soup(["script", "style"]):
            code_lines |= {line.strip() for line in tag.get_text().splitlines() if line.strip()}
            tag.decompose()
        body = soup.get_text(" ", strip=True)
        assert len(body) > 300, path.name
        assert "{" not in body, f"{path.name}: page text looks like code"
        assert code_lines and not [c for c in code_lines if c in body], path.name


def test_demo_two_hop_question_needs_two_documents() -> None:
    """R1's doc names its base model but not its size; the V3 doc gives the size."""
    root = demo_corpus_dir()
    r1 = (root / "open-models" / "deepseek-r1.md").read_text("utf-8")
    v3 = (root / "moe" / "deepseek-v3.md").read_text("utf-8")
    assert "DeepSeek-V3-Base" in r1 and "37 billion" not in r1 and "671" not in r1
    assert "37 billion" in v3 and "671 billion" in v3
    distill = (root / "open-models" / "r1-distillation.md").read_text("utf-8")
    qwen = (root / "open-models" / "qwen2.5.md").read_text("utf-8")
    assert "Qwen2.5-32B" in distill and "grouped-query" not in distill
    assert "grouped-query attention" in qwen and "64 layers" in qwen


# ---------------------------------------------------------------- multi-hop loader


def _passage(title: str, text: str, supporting: bool) -> dict[str, object]:
    return {"title": title, "text": text, "supporting": supporting}


SHARED = _passage("Vela Bridge", "Vela Bridge crosses the Orin river at Tamsford.", True)
QUESTIONS: list[dict[str, object]] = [
    {
        "id": "q1",
        "dataset": "hotpotqa",
        "question": "Which river does the bridge designed by Ada Korr cross?",
        "answers": ["Orin", "the Orin river"],
        "type": "bridge",
        "passages": [
            _passage("Ada Korr", "Ada Korr was an engineer who designed Vela Bridge.", True),
            SHARED,
            _passage("Tamsford", "Tamsford is a market town.", False),
        ],
        "meta": {"level": "hard", "sources": ["handmade"], "id_is_original": False},
    },
    {
        "id": "q2",
        "dataset": "musique",
        "question": "In which town is the bridge over the Orin?",
        "answers": ["Tamsford"],
        "type": "2hop",
        "passages": [
            SHARED,
            _passage("Orin", "The Orin is a short river.", False),
            _passage("Tamsford", "Tamsford is a market town.", False),  # exact duplicate
            _passage("Tamsford", "Tamsford has a bridge.", True),  # same title, new text
        ],
        "meta": {"level": None, "sources": [], "id_is_original": True},
    },
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def eval_file(tmp_path: Path) -> Path:
    lines = [json.dumps(q) for q in QUESTIONS]
    return _write(tmp_path / "mini.jsonl", [lines[0], "", lines[1]])  # blank lines are skipped


def test_read_questions_parses_typed_records(eval_file: Path) -> None:
    questions = read_questions(eval_file)
    assert [q.id for q in questions] == ["q1", "q2"]
    first = questions[0]
    assert isinstance(first, EvalQuestion)
    assert first.answers == ("Orin", "the Orin river")
    assert first.meta.level == "hard" and first.meta.id_is_original is False
    assert [p.supporting for p in first.passages] == [True, True, False]


def test_read_questions_limit_and_dataset_filter(eval_file: Path) -> None:
    assert [q.id for q in read_questions(eval_file, limit=1)] == ["q1"]
    assert [q.id for q in read_questions(eval_file, datasets=["musique"])] == ["q2"]
    assert read_questions(eval_file, datasets=["2wikimultihopqa"]) == []
    with pytest.raises(UnknownDatasetError, match="hotpot"):
        read_questions(eval_file, datasets=["hotpot"])


def test_pool_dedupes_by_title_and_text_in_first_seen_order(eval_file: Path) -> None:
    pooled = pool_passages(read_questions(eval_file))
    assert [(p.title, p.text) for p in pooled] == [
        ("Ada Korr", "Ada Korr was an engineer who designed Vela Bridge."),
        ("Vela Bridge", "Vela Bridge crosses the Orin river at Tamsford."),
        ("Tamsford", "Tamsford is a market town."),
        ("Orin", "The Orin is a short river."),
        ("Tamsford", "Tamsford has a bridge."),
    ]
    expected = hashlib.sha1(b"Vela Bridge\nVela Bridge crosses the Orin river at Tamsford.")
    assert pooled[1].id == expected.hexdigest()[:16] == passage_key(pooled[1].title, pooled[1].text)
    assert len({p.id for p in pooled}) == len(pooled)


def test_gold_ids_are_the_stable_ids_of_supporting_passages(eval_file: Path) -> None:
    q1, q2 = read_questions(eval_file)
    pooled = {(p.title, p.text): p.id for p in pool_passages([q1, q2])}
    assert gold_ids(q1) == {
        pooled[("Ada Korr", "Ada Korr was an engineer who designed Vela Bridge.")],
        pooled[("Vela Bridge", "Vela Bridge crosses the Orin river at Tamsford.")],
    }
    assert gold_ids(q2) == {
        pooled[("Vela Bridge", "Vela Bridge crosses the Orin river at Tamsford.")],
        pooled[("Tamsford", "Tamsford has a bridge.")],
    }


def test_pooled_documents_keep_title_separate_and_source_by_id(eval_file: Path) -> None:
    questions = read_questions(eval_file)
    documents = list(pooled_documents(questions))
    pooled = pool_passages(questions)
    assert [d.doc_id for d in documents] == [p.id for p in pooled]
    bridge = documents[1]
    assert bridge.title == "Vela Bridge"
    assert bridge.text == "Vela Bridge crosses the Orin river at Tamsford."
    assert bridge.source == f"multihop:{bridge.doc_id}"
    digest = hashlib.sha256((bridge.text + bridge.title).encode()).hexdigest()
    assert bridge.metadata["content_hash"] == digest


def test_write_pooled_jsonl_round_trips(eval_file: Path, tmp_path: Path) -> None:
    questions = read_questions(eval_file)
    out = tmp_path / "out" / "pool.jsonl"
    count = write_pooled_jsonl(questions, out)
    records = _jsonl_records(out)
    assert count == len(records) == 5
    assert [r["id"] for r in records] == [p.id for p in pool_passages(questions)]
    assert all(set(r) == {"id", "title", "text"} for r in records)
    assert not list(out.parent.glob("*.tmp"))


def test_bad_json_line_names_the_line_number(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(QUESTIONS[0]), '{"id": "q2", '])
    with pytest.raises(EvalDataFormatError, match="line 2") as info:
        read_questions(path)
    assert info.value.line_no == 2 and "invalid JSON" in str(info.value)


def test_record_missing_a_field_names_line_and_field(tmp_path: Path) -> None:
    broken = {k: v for k, v in QUESTIONS[1].items() if k != "passages"}
    path = _write(tmp_path / "bad.jsonl", [json.dumps(QUESTIONS[0]), "", json.dumps(broken)])
    with pytest.raises(EvalDataFormatError, match=r"line 3.*passages"):
        read_questions(path)
    not_object = _write(tmp_path / "list.jsonl", ["[1, 2]"])
    with pytest.raises(EvalDataFormatError, match=r"line 1.*expected an object"):
        read_questions(not_object)


def test_missing_file_names_path_and_where_eval_data_lives(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "multihop_dev.jsonl"
    with pytest.raises(EvalDataMissingError) as info:
        read_questions(missing)
    assert str(missing) in str(info.value) and "../shared/eval" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_shared_eval_dir_honours_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from serving.settings import load_settings

    # The settings module reads THINKRAG_EVAL_DIR; corpora only takes the folder given.
    monkeypatch.setenv(EVAL_DIR_ENV, str(tmp_path))
    assert shared_eval_dir(load_settings().eval_dir) == tmp_path
    monkeypatch.setenv(EVAL_DIR_ENV, str(tmp_path / "absent"))
    assert shared_eval_dir(load_settings().eval_dir) is None


# ---------------------------------------------------------------- real eval data


@pytest.mark.eval
def test_real_multihop_dev_file_loads_and_pools() -> None:
    path = EVAL_DIR / "multihop_dev.jsonl"
    if not path.is_file():
        pytest.skip(f"eval data not found at {path} (it lives in ../shared/eval beside the repo)")
    questions = read_questions(path)
    assert len(questions) == 645
    assert Counter(q.dataset for q in questions) == {
        "hotpotqa": 337,
        "2wikimultihopqa": 205,
        "musique": 103,
    }
    pooled = pool_passages(questions)
    assert 6_500 <= len(pooled) <= 7_000, len(pooled)
    pool_ids = {p.id for p in pooled}
    for question in questions:
        gold = gold_ids(question)
        assert 2 <= len(gold) <= 4, question.id
        assert gold <= pool_ids


def _questions(counts: dict[str, int]) -> list[EvalQuestion]:
    return [
        EvalQuestion(id=f"{name}-{i}", dataset=name, question="?", answers=("a",), passages=())
        for name, n in counts.items()
        for i in range(n)
    ]


def test_sample_keeps_dataset_shares_and_file_order() -> None:
    questions = _questions({"hotpotqa": 337, "2wikimultihopqa": 205, "musique": 103})
    sample = sample_questions(questions, 60, seed=1)
    assert len(sample) == 60
    assert Counter(q.dataset for q in sample) == {
        "hotpotqa": 31,  # 31.35
        "2wikimultihopqa": 19,  # 19.07
        "musique": 10,  # 9.58: the largest remainder gets the spare question
    }
    order = {q.id: i for i, q in enumerate(questions)}
    assert [order[q.id] for q in sample] == sorted(order[q.id] for q in sample)
    assert sample_questions(questions, 60, seed=1) == sample  # seeded: repeatable
    # MuSiQue's share of 3 rounds to 0, but a sample that can cover every dataset does.
    assert Counter(q.dataset for q in sample_questions(questions, 3)) == {
        "hotpotqa": 1,
        "2wikimultihopqa": 1,
        "musique": 1,
    }
    assert len(sample_questions(questions, 2)) == 2
    assert sample_questions(questions, 60, seed=2) != sample
    assert sample_questions(questions, 1000) == questions
    with pytest.raises(ValueError, match="sample size"):
        sample_questions(questions, 0)
