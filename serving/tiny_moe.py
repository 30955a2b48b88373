"""Recipe for the tiny random-weight Qwen3-MoE that exercises vLLM's real MoE path in tests.

No MoE weights can be downloaded offline, so the model is built from a seed: a Qwen3-MoE
config (2 layers, 8 experts, top-2, ~1M parameters), a byte-level BPE tokenizer trained on
deterministically generated text, and a Qwen3-style chat template. Plain random weights make
vLLM's structured outputs flaky (whitespace runs, control characters in JSON strings, stray
`<tool_call>` tokens rejected by the grammar), so the weights are shaped: residual dimension 0
is a constant feature nothing writes into, which turns lm_head column 0 into a per-token logit
bias; the other logits are flattened. Special, control and non-ASCII tokens get a negative
bias, `</think>` and EOS a small positive one, so outputs are short, printable and repeatable.
"""

from __future__ import annotations

import hashlib
import json
import random
from importlib import resources
from pathlib import Path

SEED = 20240607
TOKENIZER_VOCAB = 1024
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
ADDED_TOKENS = (
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
)
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"
MODEL_CONFIG = {
    "num_hidden_layers": 2,
    "hidden_size": 128,
    "head_dim": 32,  # vLLM's CPU attention supports head sizes 32/64/80/...
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 256,
    "moe_intermediate_size": 64,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "decoder_sparse_step": 1,
    "norm_topk_prob": True,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
# Target per-step probabilities for the biased tokens (the rest share what is left).
THINK_END_PROB = 0.03  # random reasoning ends after ~30 tokens
EOS_PROB = 0.02
QUOTE_PROB = 0.08  # all tokens holding '"' together: JSON strings close after ~12 tokens
BANNED_BIAS = -30.0
# Spread of the context-dependent (random) part of the logits. Wide enough that greedy
# decoding also ends reasoning and answers after a few tokens instead of always picking
# the biased tokens. Sampling targets are unaffected: every token's random part has the
# same distribution, so its mean weight cancels out of the probabilities.
FLAT_LOGIT_STD = 2.0
TEMPLATE_NAME = "qwen3_tiny.jinja"

_WORDS = (
    "the of and to in is that for it as was with on by be this are from at or an which "
    "search query answer source passage document index model river city year number name "
    "first second result citation question reason think step evidence true false paris "
    "france capital history science water energy light north south river mountain world "
    "people language book page title text data value score rank list open fetch tool call"
).split()


def chat_template() -> str:
    return (resources.files("serving") / "templates" / TEMPLATE_NAME).read_text()


def training_text() -> list[str]:
    """Deterministic pseudo-English plus JSON fragments, so BPE learns words and JSON syntax."""
    rng = random.Random(SEED)
    lines = []
    for i in range(4000):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 14))]
        if i % 3 == 0:
            key, value = rng.choice(_WORDS), rng.choice(_WORDS)
            lines.append(json.dumps({key: " ".join(words[:3]), "n": rng.randint(0, 999), value: i}))
        else:
            lines.append(" ".join(words).capitalize() + rng.choice([".", "?", "!", ","]))
    return lines


def recipe_hash() -> str:
    """Content hash of everything the build depends on: this module and the template."""
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())
    digest.update(chat_template().encode())
    return digest.hexdigest()


def build(out: Path) -> None:
    """Write config, bf16 safetensors weights and tokenizer for the tiny MoE into `out`."""
    tokenizer = _train_tokenizer()
    tokenizer.save_pretrained(str(out))
    model = _build_model(tokenizer)
    model.save_pretrained(str(out))


def _train_tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(training_text(), trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ADDED_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        chat_template=chat_template(),
        model_max_length=MODEL_CONFIG["max_position_embeddings"],
    )


def _token_biases(tokenizer, vocab_size: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Per-token logit bias implementing the probability targets above."""
    import math

    vocab = tokenizer.get_vocab()
    banned = {vocab[t] for t in (*SPECIAL_TOKENS, *ADDED_TOKENS)}
    eos, think_end = vocab[EOS_TOKEN], vocab["</think>"]
    biases = [BANNED_BIAS] * vocab_size
    ordinary, quoted = [], []
    for token_id in range(len(tokenizer)):
        if token_id in banned:
            continue
        text = tokenizer.decode([token_id])
        if not text or any(ord(c) < 32 or ord(c) > 126 for c in text):
            continue  # control characters, partial UTF-8, non-ASCII: keep banned
        (quoted if '"' in text else ordinary).append(token_id)
    for token_id in ordinary:
        biases[token_id] = 0.0
    # Solve e^b * k / (n + rest) = p for each group against the mass of the ordinary tokens.
    free_mass = 1.0 - THINK_END_PROB - EOS_PROB - QUOTE_PROB
    n = len(ordinary)
    biases[think_end] = math.log(THINK_END_PROB * n / free_mass)
    biases[eos] = math.log(EOS_PROB * n / free_mass)
    for token_id in quoted:
        biases[token_id] = math.log(QUOTE_PROB * n / free_mass / len(quoted))
    return biases


def _build_model(tokenizer):  # type: ignore[no-untyped-def]
    import torch
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    vocab_size = -(-len(tokenizer) // 64) * 64
    vocab = tokenizer.get_vocab()
    config = Qwen3MoeConfig(
        vocab_size=vocab_size,
        eos_token_id=vocab[EOS_TOKEN],
        pad_token_id=vocab[PAD_TOKEN],
        bos_token_id=None,
        **MODEL_CONFIG,
    )
    torch.manual_seed(SEED)
    model = Qwen3MoeForCausalLM(config).eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in sorted(model.named_parameters()):
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            else:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
            # Dimension 0 of the residual stream: nothing may write into it.
            if name.endswith("o_proj.weight"):
                param[0, :] = 0.0
            elif "down_proj" in name:
                if param.dim() == 3:  # fused experts: (experts, hidden, intermediate)
                    param[:, 0, :] = 0.0
                else:
                    param[0, :] = 0.0
        embed = model.get_input_embeddings().weight
        embed[:, 0] = 1.0
        _calibrate_head(model, tokenizer, _token_biases(tokenizer, vocab_size))
    return model.to(torch.bfloat16)


def _calibrate_head(model, tokenizer, biases: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Scale lm_head so column 0 yields `biases` and the rest has spread FLAT_LOGIT_STD."""
    import torch

    captured: list[torch.Tensor] = []
    hook = model.model.norm.register_forward_hook(lambda _m, _i, out: captured.append(out))
    sample = " ".join(training_text()[:40])
    ids = torch.tensor([tokenizer.encode(sample)[:512]])
    model(input_ids=ids)
    hook.remove()
    hidden = captured[0][0]  # (tokens, hidden) after the final norm
    head = model.lm_head.weight
    head[:, 0] = 0.0
    random_part = hidden @ head.T
    head[:, 1:] *= FLAT_LOGIT_STD / float(random_part.std())
    head[:, 0] = torch.tensor(biases) / float(hidden[:, 0].mean())
