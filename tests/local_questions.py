"""Eleven demo-corpus questions for the default local model, with how to judge them.

One- and two-hop, English and Chinese, written for this project from `corpora/demo/`.
An answer is correct when it states the expected fact (one of `answers`, a regex) and
cites at least one passage from a document that states it (`sources`, path suffixes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.events import RunFinished

DEMO_QUESTION = "How many parameters does DeepSeek-R1 activate for each token?"


@dataclass(frozen=True, slots=True)
class LocalQuestion:
    question: str
    answers: tuple[str, ...]  # regexes, any one matching the answer is enough
    sources: tuple[str, ...]  # documents that state the fact
    hops: int
    language: str

    def states_answer(self, text: str) -> bool:
        return any(re.search(p, text, re.IGNORECASE) for p in self.answers)

    def cites_source(self, done: RunFinished) -> bool:
        return any(s.source.endswith(self.sources) for s in done.sources)

    def correct(self, done: RunFinished) -> bool:
        return self.states_answer(done.answer) and self.cites_source(done)


QUESTIONS: tuple[LocalQuestion, ...] = (
    LocalQuestion(
        DEMO_QUESTION,
        (r"\b37\s*(b\b|billion)", r"370\s*亿"),
        ("moe/deepseek-v3.md", "moe/total-vs-active-parameters.md"),
        2,
        "en",
    ),
    LocalQuestion(
        "Which base model was DeepSeek-R1-Distill-Qwen-32B fine-tuned from?",
        (r"qwen\s*2\.5[- ]32b",),
        ("open-models/r1-distillation.md",),
        1,
        "en",
    ),
    LocalQuestion(
        "In which year did William Stanley Jevons publish The Coal Question?",
        (r"1865",),
        ("economics/jevons-paradox.md", "economics/jevons-zh.md"),
        1,
        "en",
    ),
    LocalQuestion(
        "What constant is conventionally used in reciprocal rank fusion?",
        (r"\b60\b",),
        ("rag/hybrid-search.md",),
        1,
        "en",
    ),
    LocalQuestion(
        "With which Nvidia GPU architecture was CUDA introduced?",
        (r"\bG80\b",),
        ("cuda/cuda-history.md",),
        1,
        "en",
    ),
    LocalQuestion(
        "How many transformer layers does the base model of DeepSeek-R1 have?",
        (r"\b61\b",),
        ("moe/deepseek-v3.md",),
        2,
        "en",
    ),
    LocalQuestion(
        "Which company makes the base model of DeepSeek-R1-Distill-Llama-8B?",
        (r"\bmeta\b",),
        ("open-models/model-cards.jsonl",),
        2,
        "en",
    ),
    LocalQuestion(
        "Qwen3-30B-A3B 每个词元激活多少参数？",
        (r"30\s*亿", r"33\s*亿", r"3\.3\s*(b|billion)", r"\b3b\b", r"三十亿"),
        ("moe/qwen3-30b-a3b-zh.md", "moe/qwen3-family.md"),
        1,
        "zh",
    ),
    LocalQuestion(
        "杰文斯在哪一年出版了《煤炭问题》？",
        (r"1865",),
        ("economics/jevons-zh.md", "economics/jevons-paradox.md"),
        1,
        "zh",
    ),
    LocalQuestion(
        "Mixtral 8x7B 每层有多少个专家？",
        (r"\b8\s*个", r"八个", r"\b8\b"),
        ("moe/moe-zh.md", "open-models/model-cards.jsonl", "moe/moe-basics.md"),
        1,
        "zh",
    ),
    LocalQuestion(
        "DeepSeek-R1 的基础模型总共有多少参数？",
        (r"6710\s*亿", r"671\s*(b\b|billion|0?\s*亿)"),
        ("moe/deepseek-v3.md", "moe/total-vs-active-parameters.md"),
        2,
        "zh",
    ),
)
