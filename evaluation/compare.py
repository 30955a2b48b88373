"""Is run B really better than run A? A paired bootstrap over the questions both answered.

Resampling question ids (not the two runs independently) keeps each question's difficulty
paired, which is what makes small differences on a few hundred questions testable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ComparisonError(ValueError):
    """The two runs cannot be compared (no shared questions, bad parameters)."""


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """Mean of B minus A over shared questions, with a bootstrap confidence interval."""

    metric: str
    n: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_not_better: float  # share of resamples where B - A <= 0 (one-sided)
    confidence: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0


def paired_bootstrap(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    metric: str = "",
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Bootstrap the mean difference B - A over the question ids present in both maps."""
    if samples < 1:
        raise ComparisonError(f"samples must be >= 1, got {samples}; pass e.g. samples=2000")
    if not 0 < confidence < 1:
        raise ComparisonError(f"confidence must be in (0, 1), got {confidence}; pass e.g. 0.95")
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ComparisonError(
            "the two runs share no question ids; compare runs made on the same dataset"
        )
    diffs = np.array([b[q] - a[q] for q in shared], dtype=np.float64)
    n = len(diffs)
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, n, size=(samples, n))].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    not_better = float(np.mean(means <= 0))
    return PairedDifference(
        metric=metric,
        n=n,
        mean_a=sum(a[q] for q in shared) / n,
        mean_b=sum(b[q] for q in shared) / n,
        diff=float(diffs.mean()),
        ci_low=float(low),
        ci_high=float(high),
        p_not_better=not_better,
        confidence=confidence,
    )


@dataclass(frozen=True, slots=True)
class MethodComparison:
    method_a: str
    method_b: str
    em: PairedDifference
    f1: PairedDifference


def _results_path(run: Path) -> Path:
    path = run / "results.jsonl" if run.is_dir() else run
    if not path.is_file():
        raise ComparisonError(
            f"{run} has no results.jsonl; pass an --out directory of a finished `thinkrag eval`"
        )
    return path


def compare_runs(
    run_a: Path, run_b: Path, *, samples: int = 2000, seed: int = 0
) -> list[MethodComparison]:
    """EM/F1 differences (B - A) per method both runs hold.

    When the runs share no method name but each holds exactly one method, those two are
    compared (e.g. `rag` in run A against `agent` in run B).
    """
    from evaluation.records import latest_by_key, read_results

    def by_method(run: Path) -> dict[str, dict[str, tuple[float, float]]]:
        grouped: dict[str, dict[str, tuple[float, float]]] = {}
        for (method, qid), r in latest_by_key(read_results(_results_path(run))).items():
            grouped.setdefault(method, {})[qid] = (r.em, r.f1)
        return grouped

    a, b = by_method(run_a), by_method(run_b)
    pairs = [(m, m) for m in a if m in b]
    if not pairs and len(a) == 1 and len(b) == 1:
        pairs = [(next(iter(a)), next(iter(b)))]
    if not pairs:
        raise ComparisonError(
            f"no method to compare: run A has {sorted(a)}, run B has {sorted(b)}; "
            "compare runs holding the same method, or one method each"
        )
    out: list[MethodComparison] = []
    for ma, mb in pairs:
        em = paired_bootstrap(
            {q: v[0] for q, v in a[ma].items()},
            {q: v[0] for q, v in b[mb].items()},
            metric="em",
            samples=samples,
            seed=seed,
        )
        f1 = paired_bootstrap(
            {q: v[1] for q, v in a[ma].items()},
            {q: v[1] for q, v in b[mb].items()},
            metric="f1",
            samples=samples,
            seed=seed,
        )
        out.append(MethodComparison(ma, mb, em, f1))
    return out


def render_comparison(comparisons: list[MethodComparison]) -> str:
    lines = [
        "| method (A -> B) | metric | n | A | B | B - A | 95% CI | significant |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for c in comparisons:
        label = c.method_a if c.method_a == c.method_b else f"{c.method_a} -> {c.method_b}"
        for d in (c.em, c.f1):
            lines.append(
                f"| {label} | {d.metric.upper()} | {d.n} | {d.mean_a * 100:.1f} "
                f"| {d.mean_b * 100:.1f} | {d.diff * 100:+.1f} "
                f"| [{d.ci_low * 100:+.1f}, {d.ci_high * 100:+.1f}] "
                f"| {'yes' if d.significant else 'no'} |"
            )
    return "\n".join(lines)
