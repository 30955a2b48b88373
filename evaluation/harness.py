"""Run methods over eval questions with bounded concurrency, scoring and recording each one.

Every finished question is appended to `results.jsonl` at once; on start the file is read
back and finished (method, question) pairs are skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from evaluation.dataset import EvalQuestion, gold_ids
from evaluation.methods import Method, MethodOutput, failure_kind
from evaluation.metrics import (
    all_gold,
    citation_precision,
    citation_validity,
    exact_match,
    supporting_recall,
    token_f1,
)
from evaluation.records import (
    QuestionResult,
    append_result,
    end_torn_line,
    latest_by_key,
    read_results,
)

RESULTS_FILE = "results.jsonl"


def score(
    question: EvalQuestion, method: str, output: MethodOutput, seconds: float
) -> QuestionResult:
    """Turn a method's output into a scored record."""
    gold = sorted(gold_ids(question))
    retrieves = bool(output.retrieved) or output.searches > 0
    cited = output.cited
    return QuestionResult(
        id=question.id,
        dataset=question.dataset,
        method=method,
        question=question.question,
        answers=list(question.answers),
        prediction=output.prediction,
        answer=output.answer or None,
        em=exact_match(output.prediction, question.answers),
        f1=token_f1(output.prediction, question.answers),
        gold=gold,
        retrieved=output.retrieved,
        cited=cited,
        supporting_recall=supporting_recall(output.retrieved, gold) if retrieves else None,
        all_gold=all_gold(output.retrieved, gold) if retrieves else None,
        citation_precision=citation_precision(cited, gold),
        citation_validity=citation_validity(cited, output.retrieved),
        steps=output.steps,
        searches=output.searches,
        prompt_tokens=output.usage.prompt_tokens,
        completion_tokens=output.usage.completion_tokens,
        reasoning_tokens=output.usage.reasoning_tokens,
        seconds=seconds,
        failure=output.failure,
        error=output.error,
        finalized_reason=output.finalized_reason,
    )


async def run_one(
    method: Method, question: EvalQuestion, *, timeout: float | None = None
) -> QuestionResult:
    """Answer and score one question; a failure is recorded as a result, never raised."""
    started = time.perf_counter()
    try:
        output = await asyncio.wait_for(method.answer(question.question), timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # recorded by kind: one failing question must not stop the run
        output = MethodOutput(prediction="", failure=failure_kind(exc), error=str(exc)[:500])
    return score(question, method.name, output, time.perf_counter() - started)


def pending_work(
    questions: Sequence[EvalQuestion],
    methods: Sequence[Method],
    results_path: Path,
    *,
    retry_failed: bool = False,
) -> list[tuple[Method, EvalQuestion]]:
    """(method, question) pairs without a recorded result yet (or whose latest result is a
    failure, with `retry_failed`: the new record supersedes it)."""
    latest = latest_by_key(read_results(results_path))
    done = {key for key, r in latest.items() if not (retry_failed and r.failure)}
    return [(m, q) for m in methods for q in questions if (m.name, q.id) not in done]


async def run_methods(
    questions: Sequence[EvalQuestion],
    methods: Sequence[Method],
    out_dir: Path,
    *,
    concurrency: int = 2,
    timeout: float | None = None,
    retry_failed: bool = False,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[QuestionResult], None] | None = None,
) -> list[QuestionResult]:
    """Run every pending pair with at most `concurrency` in flight; returns all results
    (old and new) for these questions and methods, one per pair."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / RESULTS_FILE
    end_torn_line(results_path)
    work = pending_work(questions, methods, results_path, retry_failed=retry_failed)
    if on_start is not None:
        on_start(len(questions) * len(methods), len(work))
    semaphore = asyncio.Semaphore(concurrency)

    async def worker(method: Method, question: EvalQuestion) -> None:
        async with semaphore:
            result = await run_one(method, question, timeout=timeout)
        append_result(results_path, result)
        if on_result is not None:
            on_result(result)

    await asyncio.gather(*(worker(m, q) for m, q in work))
    wanted = {(m.name, q.id) for m in methods for q in questions}
    latest = latest_by_key(read_results(results_path))
    return [r for key, r in latest.items() if key in wanted]
