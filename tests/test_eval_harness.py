"""`thinkrag eval`'s harness end to end on hand-written questions with the scripted model.

Made-up two-hop questions (not from any benchmark), a real index built by the job (with
the deterministic HashEmbedder), real HTTP to a scripted OpenAI-protocol server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.llm.client import OpenAIClient
from evaluation.compare import compare_runs, render_comparison
from evaluation.records import read_results
from evaluation.report import MetricRow, Report
from evaluation.session import EvalPlan, EvalUsageError, run_evaluation
from testing.embedder import HashEmbedder
from testing.scripted import ScriptedModelServer, ScriptedTurn, ScriptRequest

Factory = Callable[..., ScriptedModelServer]


def _p(title: str, text: str, supporting: bool = False) -> dict[str, object]:
    return {"title": title, "text": text, "supporting": supporting}


QUESTIONS = [
    {
        "id": "q-kazoo",
        "dataset": "hotpotqa",
        "question": "Which river runs through the birthplace of the inventor of the glass kazoo?",
        "answers": ["Tessel", "Tessel River"],
        "type": "bridge",
        "passages": [
            _p("Glass kazoo", "The glass kazoo was made by Orla Penhallow.", True),
            _p("Orla Penhallow", "Penhallow grew up in Marrowick, on the Tessel River.", True),
            _p("Brass kazoo", "Brass kazoos are loud and cheap."),
        ],
    },
    {
        "id": "q-born",
        "dataset": "2wikimultihopqa",
        "question": "Who was born first, Brannoch Velt or Imelda Sorrowby?",
        "answers": ["Imelda Sorrowby"],
        "type": "comparison",
        "passages": [
            _p("Brannoch Velt", "Brannoch Velt (born 1902) was a lighthouse painter.", True),
            _p("Imelda Sorrowby", "Imelda Sorrowby (born 1888) wrote sea shanties.", True),
            _p("Velt family", "The Velt family kept goats."),
        ],
    },
    {
        "id": "q-flag",
        "dataset": "musique",
        "question": "What colour is the flag of the country whose capital is Quorrin?",
        "answers": ["green"],
        "type": "compositional",
        "passages": [
            _p("Velmora", "Velmora is a landlocked country. Its capital is Quorrin.", True),
            _p("Flag of Velmora", "The flag of Velmora is plain green.", True),
            _p("Quorrin Zoo", "Quorrin Zoo houses two tapirs."),
        ],
    },
]
# What the scripted model says, by method: rag gets q-born half right (F1 2/3).
RAG_ANSWERS = {"kazoo": "Tessel River.", "Brannoch": "Imelda", "Quorrin": "Green"}
AGENT_ANSWERS = {"kazoo": "Tessel [1]", "Brannoch": "Imelda Sorrowby [2]", "Quorrin": "blue [1]"}


def write_dataset(path: Path) -> Path:
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return path


def _pick(answers: dict[str, str], text: str) -> str:
    return next(answer for key, answer in answers.items() if key in text)


def script(req: ScriptRequest) -> ScriptedTurn:
    """Answers by method: the agent sends tools, rag sends passages, closed-book neither."""
    messages = req.body.get("messages", [])
    first_user = next(m["content"] for m in messages if m["role"] == "user")
    if req.body.get("tools"):
        if any(m["role"] == "tool" for m in messages):
            return ScriptedTurn(content=_pick(AGENT_ANSWERS, first_user))
        query = json.dumps({"query": first_user[-80:]})
        return ScriptedTurn(reasoning="Search first.", tool_calls=(("search", query),))
    if "Use the passages below" in first_user:
        return ScriptedTurn(content=_pick(RAG_ANSWERS, first_user.split("Question:")[-1]))
    return ScriptedTurn(content="I do not know.")


def plan(dataset: Path, out: Path, **kw: object) -> EvalPlan:
    base = EvalPlan(
        dataset=dataset,
        out_dir=out,
        embedder=HashEmbedder(),
        cache_root=out.parent / "cache",
        top_k=10,
        concurrency=2,
        retrieval_rows=True,
    )
    for key, value in kw.items():
        setattr(base, key, value)
    return base


async def run(p: EvalPlan, server: ScriptedModelServer) -> Report:
    model = OpenAIClient(server.base_url, "scripted")
    try:
        return await run_evaluation(p, model)
    finally:
        await model.aclose()


def row(report: Report, method: str, dataset: str = "all") -> MetricRow:
    return next(r for r in report.rows if r.method == method and r.dataset == dataset)


async def test_known_scores_come_out(tmp_path: Path, scripted_model: Factory) -> None:
    server = scripted_model(script)
    dataset = write_dataset(tmp_path / "tiny.jsonl")
    report = await run(
        plan(dataset, tmp_path / "out", methods=("closed-book", "rag", "agent")), server
    )
    closed, rag, agent = row(report, "closed-book"), row(report, "rag"), row(report, "agent")
    assert closed.n == 3 and closed.em == 0.0 and closed.f1 == 0.0
    assert closed.supporting_recall is None  # it retrieves nothing
    assert rag.em == pytest.approx(2 / 3)
    assert rag.f1 == pytest.approx((1 + 2 / 3 + 1) / 3)
    # 9 pooled passages, top 10 shown: every gold passage is retrieved
    assert rag.supporting_recall == 1.0 and rag.all_gold == 1.0
    assert rag.searches == 1.0 and rag.steps == 1.0
    assert row(report, "rag", "musique").em == 1.0
    assert agent.em == pytest.approx(2 / 3)  # "blue" is wrong
    assert agent.searches >= 1.0 and agent.citation_validity == 1.0
    assert agent.failures == {}
    assert report.rows and {r.system for r in report.retrieval} >= {"bm25", "hybrid"}

    results = read_results(tmp_path / "out" / "results.jsonl")
    assert len(results) == 9
    kazoo = next(r for r in results if r.method == "rag" and r.id == "q-kazoo")
    assert kazoo.prediction == "Tessel River" and kazoo.em == 1.0
    assert kazoo.answer == "Tessel River."  # the full reply is kept beside its scored span
    # The agent is asked for a short first line, like closed-book and rag.
    agent_system = next(r for r in server.requests if r.body.get("tools")).body["messages"][0]
    assert "answer itself on the first line" in agent_system["content"]
    assert len(kazoo.gold) == 2 and set(kazoo.gold) <= set(kazoo.retrieved)

    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| Method | 2Wiki EM | F1 | HotpotQA EM | F1 | MuSiQue EM | F1 | Overall EM | F1 |" in md
    assert "| rag | 0.0 | 66.7 | 100.0 | 100.0 | 100.0 | 100.0 | 66.7 | 88.9 |" in md
    assert "## Retrieval only" in md and "multihop(hybrid)" in md
    parsed = Report.model_validate_json((tmp_path / "out" / "report.json").read_text())
    assert parsed.rows == report.rows


async def test_sample_draws_across_datasets(tmp_path: Path, scripted_model: Factory) -> None:
    server = scripted_model(script)
    dataset = write_dataset(tmp_path / "tiny.jsonl")
    out = tmp_path / "out"
    report = await run(plan(dataset, out, methods=("rag",), sample=2, seed=0), server)
    assert report.questions == 2
    # Shares tie at 2/3 each; ties go by dataset name, so MuSiQue is left out.
    assert {r.dataset for r in report.rows} == {"all", "2wikimultihopqa", "hotpotqa"}
    with pytest.raises(EvalUsageError, match="not both"):
        await run(plan(dataset, out, methods=("rag",), sample=2, limit=2), server)


async def test_resume_does_not_ask_finished_questions_again(
    tmp_path: Path, scripted_model: Factory
) -> None:
    server = scripted_model(script)
    dataset = write_dataset(tmp_path / "tiny.jsonl")
    out = tmp_path / "out"
    methods = ("closed-book", "rag")
    await run(plan(dataset, out, methods=methods, limit=2), server)  # "interrupted" after 2
    assert len(server.requests) == 4
    # a kill mid-write leaves a torn line: it must be ignored, not crash the resume
    with (out / "results.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"id": "q-flag", "method": "rag", "datas')
    report = await run(plan(dataset, out, methods=methods), server)
    assert len(server.requests) == 6  # only the third question, once per method
    assert row(report, "rag").n == 3 and row(report, "closed-book").n == 3
    await run(plan(dataset, out, methods=methods), server)
    assert len(server.requests) == 6  # nothing left to do


async def test_retry_failed_asks_again_only_where_the_last_try_failed(
    tmp_path: Path, scripted_model: Factory
) -> None:
    failed_once: list[str] = []

    def flaky(req: ScriptRequest) -> ScriptedTurn:
        text = json.dumps(req.body.get("messages", []))
        if "Quorrin" in text and not failed_once:
            failed_once.append("Quorrin")
            return ScriptedTurn(status=400, error_message="prompt too long")
        return script(req)

    server = scripted_model(flaky)
    dataset = write_dataset(tmp_path / "tiny.jsonl")
    out = tmp_path / "out"
    first = await run(plan(dataset, out, methods=("rag",)), server)
    assert row(first, "rag").failures == {"model_request": 1}
    await run(plan(dataset, out, methods=("rag",)), server)
    assert len(server.requests) == 3  # a plain resume keeps the failure
    again = await run(plan(dataset, out, methods=("rag",), retry_failed=True), server)
    assert len(server.requests) == 4  # only the failed question was asked again
    assert row(again, "rag").failures == {} and row(again, "rag", "musique").em == 1.0


async def test_compare_two_runs(tmp_path: Path, scripted_model: Factory) -> None:
    server = scripted_model(script)
    dataset = write_dataset(tmp_path / "tiny.jsonl")
    await run(plan(dataset, tmp_path / "a", methods=("closed-book",)), server)
    await run(plan(dataset, tmp_path / "b", methods=("rag",)), server)
    (comparison,) = compare_runs(tmp_path / "a", tmp_path / "b", samples=300)
    assert (comparison.method_a, comparison.method_b) == ("closed-book", "rag")
    assert comparison.em.n == 3 and comparison.em.diff == pytest.approx(2 / 3)
    assert comparison.f1.ci_low > 0  # rag beats closed-book on every question's F1
    text = render_comparison([comparison])
    assert "closed-book -> rag" in text and "+66.7" in text


async def test_rich_progress_hooks_drive_a_run(tmp_path: Path, scripted_model: Factory) -> None:
    from evaluation.progress import RichProgress

    server = scripted_model(script)
    dataset = write_dataset(tmp_path / "tiny.jsonl")
    model = OpenAIClient(server.base_url, "scripted")
    try:
        with RichProgress() as progress:
            p = plan(dataset, tmp_path / "out", methods=("rag",))
            report = await run_evaluation(p, model, progress.hooks())
    finally:
        await model.aclose()
    assert row(report, "rag").n == 3
    descriptions = [task.description for task in progress.bar.tasks]
    assert descriptions == ["embedding passages", "retrieval rows", "questions"]
    assert all(task.finished for task in progress.bar.tasks)
