"""Recipe for the tiny random-weight Qwen3-MoE that exercises vLLM's real MoE path in tests.

No MoE weights can be downloaded offline, so the model is built from a seed: a Qwen3-MoE
config (2 layers, 8 experts, top-2, ~1M parameters), a byte-level BPE tokenizer trained on
deterministically generated text, and a Qwen3-style chat template. Plain random weights make
vLLM's structured outputs flaky (whitespace runs, control characters in JSON strings, stray
`<tool_call>` tokens rejected by the grammar), so the weights are shaped: residual dimension 0
is a constant feature nothing writes into, which turns lm_head column 0 into a per-token logit
bias; the other logits are flattened. Special, control and non-ASCII tokens get a negative
bias (EOS too: only a completed grammar ends a turn), `</think>` a small positive one, so
reasoning ends after ~30 tokens and seeded outputs are printable and repeatable.
"""

from __future__ import annotations

import hashlib
import json
import random
from importlib import resources
from pathlib import Path
from typing import Any

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
MODEL_CONFIG: dict[str, Any] = {
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
# EOS is (almost) banned: an EOS inside the reasoning ends the turn before any tool call or
# JSON (vLLM then reports finish_reason=tool_calls with no calls). Where a grammar is
# complete EOS still wins, being the only token allowed or, after a tool call, far likelier
# than the banned `<tool_call>` that would open another call. Free text runs to max_tokens.
EOS_PROB = 0.0
GRAMMAR_END_BIAS = -20.0
WHITESPACE_BIAS = -6.0  # grammars allow whitespace runs the model would otherwise pad with
# Tokens holding '<' can spell `<tool_call>` piece by piece, which a tool-call grammar takes
# as the start of another call; below EOS, so a finished call ends the turn. This also keeps
# tag-like text out of the reasoning, where the parser would read it as markup.
ANGLE_BIAS = -25.0
QUOTE_PROB = 0.08  # all tokens holding '"' together: JSON strings close after ~12 tokens
BANNED_BIAS = -30.0
# Spread of the context-dependent (random) part of the logits. Wide enough that greedy
# decoding also ends reasoning and answers after a few tokens instead of always picking
# the biased tokens. Sampling targets are unaffected: every token's random part has the
# same distribution, so its mean weight cancels out of the probabilities.
FLAT_LOGIT_STD = 2.0
TEMPLATE_NAME = "qwen3_tiny.jinja"

_WORD_TEXT = (
    "the of and to in is that for it as was with on by be this are from at or an which "
    "search query answer source passage document index model river city year number name "
    "first second result citation question reason think step evidence true false paris "
    "france capital history science water energy light north south river mountain world "
    "people language book page title text data value score rank list open fetch tool call"
)


def chat_template() -> str:
    return (resources.files("serving.models") / "templates" / TEMPLATE_NAME).read_text()


def training_text() -> list[str]:
    """Deterministic pseudo-English plus JSON fragments, so BPE learns words and JSON syntax."""
    rng = random.Random(SEED)
    words_pool = _WORD_TEXT.split()
    lines = []
    for i in range(4000):
        words = [rng.choice(words_pool) for _ in range(rng.randint(4, 14))]
        if i % 3 == 0:
            key, value = rng.choice(words_pool), rng.choice(words_pool)
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


def _train_tokenizer():
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


def _token_groups(tokenizer) -> tuple[list[int], list[int], list[int]]:
    """(ordinary, quoted, spaces): printable ASCII tokens without / with a '"', whitespace.

    Everything else (specials, added tokens, control characters, partial UTF-8,
    non-ASCII, padding rows) stays banned.
    """
    vocab = tokenizer.get_vocab()
    excluded = {vocab[t] for t in (*SPECIAL_TOKENS, *ADDED_TOKENS)}
    ordinary: list[int] = []
    quoted: list[int] = []
    spaces: list[int] = []
    for token_id in range(len(tokenizer)):
        if token_id in excluded:
            continue
        text = tokenizer.decode([token_id])
        if not text or any(ord(c) < 32 or ord(c) > 126 for c in text):
            continue
        if "<" in text:
            continue  # stays banned (ANGLE_BIAS)
        if text.isspace():
            spaces.append(token_id)
            continue
        (quoted if '"' in text else ordinary).append(token_id)
    return ordinary, quoted, spaces


def _build_model(tokenizer):
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
        _calibrate_head(model, tokenizer)
    return model.to(torch.bfloat16)


def _calibrate_head(model, tokenizer) -> None:
    """Make lm_head column 0 a per-token bias hitting the probability targets.

    The random columns are scaled to FLAT_LOGIT_STD on real hidden states; biased and
    banned tokens get no random part, so their logit is exactly their bias. Each target is
    solved against the measured mass of the ordinary tokens: e^b / mass = p / free_mass.
    """
    import math

    import torch

    ordinary, quoted, spaces = _token_groups(tokenizer)
    vocab = tokenizer.get_vocab()
    think_end, eos = vocab["</think>"], vocab[EOS_TOKEN]
    captured: list[torch.Tensor] = []
    hook = model.model.norm.register_forward_hook(lambda _m, _i, out: captured.append(out))
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Which river runs through Paris?"}],
        add_generation_prompt=True,
        tokenize=False,
    )
    ids = tokenizer.encode(chat + " ".join(training_text()[:40]))[:512]
    model(input_ids=torch.tensor([ids]))
    hook.remove()
    hidden = captured[0][0]  # (tokens, hidden) after the final norm; dim 0 is ~constant
    head = model.lm_head.weight
    head[:, 0] = 0.0
    keep = torch.zeros(head.shape[0], dtype=torch.bool)
    keep[ordinary] = True
    head[~keep, 1:] = 0.0
    random_part = (hidden @ head.T)[:, keep]
    head[:, 1:] *= FLAT_LOGIT_STD / float(random_part.std())
    mass = float(torch.exp(random_part * FLAT_LOGIT_STD / random_part.std()).sum(-1).mean())
    free = 1.0 - THINK_END_PROB - EOS_PROB - QUOTE_PROB
    biases = torch.full((head.shape[0],), BANNED_BIAS)
    biases[[i for i in range(len(tokenizer)) if "<" in tokenizer.decode([i])]] = ANGLE_BIAS
    biases[ordinary] = 0.0
    biases[think_end] = math.log(THINK_END_PROB * mass / free)
    biases[eos] = math.log(EOS_PROB * mass / free) if EOS_PROB > 0 else GRAMMAR_END_BIAS
    biases[spaces] = WHITESPACE_BIAS
    biases[quoted] = math.log(QUOTE_PROB * mass / free / len(quoted))
    head[:, 0] = biases / float(hidden[:, 0].mean())
