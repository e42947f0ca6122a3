"""A GGUF tensor's own quantization grid, in the layout of onnxruntime's ``MatMulNBits``.

Every block type this module reads is, per block of ``block`` input features, an affine grid:
``w = (code - centre) * scale + offset``, with ``centre`` MatMulNBits' default zero point (8 for 4-bit
codes, 128 for 8-bit ones). So a matmul keeps exactly the values the source holds:

    A @ W^T = MatMulNBits(A, codes, scales)  +  blocksum(A) @ offsets^T

where ``blocksum(A)`` sums A over each block along K. ``offsets`` has 1/``block`` of the weights' entries,
and is absent for the symmetric types (``Q4_0``, ``Q5_0``, ``Q6_K``, ``Q8_0``).

=======  ====================================  ====  =====  ==========================
type     source value                          bits  block  offset
=======  ====================================  ====  =====  ==========================
Q4_0     d (q - 8)                             4     32     --
Q4_1     d q + m                               4     32     m + 8 d
Q4_K     d sc q - dmin mn (sub-blocks of 32)   4     32     8 d sc - dmin mn
Q5_0     d (q - 16)                            8     32     --  (code q + 112)
Q5_1     d q + m                               8     32     m + 16 d
Q5_K     d sc q - dmin mn                      8     32     16 d sc - dmin mn
Q6_K     d sc (q - 32) (sub-blocks of 16)      8     16     --  (code q + 96)
Q8_0     d q                                   8     32     --  (code q + 128)
=======  ====================================  ====  =====  ==========================

5-bit codes are stored as 8-bit ones (exact, more bytes); other GGUF types have no grid here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

QK_K = 256


@dataclasses.dataclass(frozen=True)
class SourceGrid:
    """A weight as rows [N, K] (one per output feature) on its source grid.

    ``codes`` uint8 [N, n_blocks, block] (unpacked), ``scales`` float32 [N, n_blocks], ``offsets``
    float32 [N, n_blocks] or None; ``source_type`` names the GGUF block type it was read from.
    """

    codes: np.ndarray
    scales: np.ndarray
    offsets: np.ndarray | None
    bits: int
    source_type: str

    @property
    def centre(self) -> int:
        return 1 << (self.bits - 1)

    @property
    def rows(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_blocks(self) -> int:
        return int(self.codes.shape[1])

    @property
    def block(self) -> int:
        return int(self.codes.shape[2])

    @property
    def in_features(self) -> int:
        return self.n_blocks * self.block

    def dequantize(self) -> np.ndarray:
        """The source's values as float32 rows [N, K]."""
        values = (self.codes.astype(np.float32) - np.float32(self.centre)) * self.scales[..., None]
        if self.offsets is not None:
            values += self.offsets[..., None]
        return np.asarray(values.reshape(self.rows, -1), dtype=np.float32)

    def packed(self) -> np.ndarray:
        """Codes in MatMulNBits' blob layout [N, n_blocks, block * bits / 8]; 4-bit: element 2j in the low
        nibble of byte j, element 2j + 1 in the high one."""
        if self.bits == 8:
            return self.codes
        return np.asarray(self.codes[..., 0::2] | (self.codes[..., 1::2] << np.uint8(4)), dtype=np.uint8)

    def as_8bit(self) -> SourceGrid:
        """The same values with 8-bit codes (exact: the code moves by 128 - 8)."""
        if self.bits == 8:
            return self
        return dataclasses.replace(self, codes=self.codes + np.uint8(120), bits=8)

    def take_rows(self, index: np.ndarray) -> SourceGrid:
        offsets = None if self.offsets is None else self.offsets[index]
        return dataclasses.replace(self, codes=self.codes[index], scales=self.scales[index], offsets=offsets)


def stack_rows(grids: Sequence[SourceGrid]) -> SourceGrid | None:
    """One grid of the rows of several (the fused q/k/v projection), or None when their bits, blocks or
    input sizes differ; offsets are zero where a grid has none."""
    first = grids[0]
    if any((g.bits, g.block, g.n_blocks) != (first.bits, first.block, first.n_blocks) for g in grids):
        return None
    offsets = None
    if any(g.offsets is not None for g in grids):
        offsets = np.concatenate([g.offsets if g.offsets is not None else np.zeros_like(g.scales) for g in grids])
    types = "+".join(dict.fromkeys(g.source_type for g in grids))
    return SourceGrid(np.concatenate([g.codes for g in grids]), np.concatenate([g.scales for g in grids]),
                      offsets, first.bits, types)


def decode(type_name: str, raw: np.ndarray, in_features: int) -> SourceGrid | None:
    """Rows of raw GGUF blocks (uint8 [N, bytes per row]) on their grid, or None for other types."""
    decoder = _DECODERS.get(type_name)
    if decoder is None:
        return None
    rows = raw.shape[0]
    blocks = np.ascontiguousarray(raw).reshape(rows * in_features // _BLOCK_VALUES[type_name], -1)
    codes, scales, offsets, bits = decoder(blocks)
    n_blocks = codes.size // (rows * codes.shape[-1])
    block = codes.shape[-1]
    shaped_offsets = None if offsets is None else offsets.reshape(rows, n_blocks).astype(np.float32)
    return SourceGrid(codes.reshape(rows, n_blocks, block), scales.reshape(rows, n_blocks).astype(np.float32),
                      shaped_offsets, bits, type_name)


def supported_types() -> tuple[str, ...]:
    return tuple(_DECODERS)


Decoded = tuple[np.ndarray, np.ndarray, np.ndarray | None, int]


def _f16(raw: np.ndarray) -> np.ndarray:
    """A column pair of bytes as float32 [n]."""
    return np.ascontiguousarray(raw).view(np.float16).astype(np.float32).reshape(-1)


def _nibbles(qs: np.ndarray, group: int) -> np.ndarray:
    """GGUF's 4-bit layout: per group of ``2 * group`` values, byte j holds value j (low) and j + group."""
    n = qs.shape[0]
    q = qs.reshape(n, -1, 1, group) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    return (q & np.uint8(0x0F)).reshape(n, -1)


def _high_bits(qh: np.ndarray, n_values: int) -> np.ndarray:
    """Q5_0/Q5_1's fifth bit: bit i of a little-endian uint32 for value i."""
    bits = np.ascontiguousarray(qh).view(np.uint32).reshape(-1, 1) >> np.arange(n_values, dtype=np.uint32)
    return (bits & np.uint32(1)).astype(np.uint8)


def _q4_0(b: np.ndarray) -> Decoded:
    return _nibbles(b[:, 2:], 16).reshape(-1, 32), _f16(b[:, :2]), None, 4


def _q4_1(b: np.ndarray) -> Decoded:
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    return _nibbles(b[:, 4:], 16).reshape(-1, 32), d, m + 8 * d, 4


def _q5_0(b: np.ndarray) -> Decoded:
    q = _nibbles(b[:, 6:], 16) | (_high_bits(b[:, 2:6], 32) << np.uint8(4))
    return (q + np.uint8(112)).reshape(-1, 32), _f16(b[:, :2]), None, 8


def _q5_1(b: np.ndarray) -> Decoded:
    d, m = _f16(b[:, :2]), _f16(b[:, 2:4])
    q = _nibbles(b[:, 8:], 16) | (_high_bits(b[:, 4:8], 32) << np.uint8(4))
    return (q + np.uint8(112)).reshape(-1, 32), d, m + 16 * d, 8


def _q8_0(b: np.ndarray) -> Decoded:
    codes = (np.ascontiguousarray(b[:, 2:]).view(np.int8).astype(np.int16) + 128).astype(np.uint8)
    return codes.reshape(-1, 32), _f16(b[:, :2]), None, 8


def _k_scale_min(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K's per-sub-block scale and min, [n, 8] each (``d * sc`` and ``dmin * mn``)."""
    from gguf.quants import Q4_K

    sc, mn = Q4_K.get_scale_min(np.ascontiguousarray(b[:, 4:16]))
    d, dmin = _f16(b[:, :2])[:, None], _f16(b[:, 2:4])[:, None]
    return d * sc.astype(np.float32), dmin * mn.astype(np.float32)


def _q4_k(b: np.ndarray) -> Decoded:
    scale, low = _k_scale_min(b)
    return _nibbles(b[:, 16:], 32).reshape(-1, 32), scale, 8 * scale - low, 4


def _q5_k(b: np.ndarray) -> Decoded:
    scale, low = _k_scale_min(b)
    n = b.shape[0]
    qh = b[:, 16:48].reshape(n, 1, 32) >> np.arange(8, dtype=np.uint8).reshape(1, 8, 1)
    q = _nibbles(b[:, 48:], 32).reshape(n, 8, 32) | ((qh & np.uint8(1)) << np.uint8(4))
    return (q + np.uint8(112)).reshape(-1, 32), scale, 16 * scale - low, 8


def _q6_k(b: np.ndarray) -> Decoded:
    n = b.shape[0]
    ql = b[:, :128].reshape(n, -1, 1, 64) >> np.array([0, 4], dtype=np.uint8).reshape(1, 1, 2, 1)
    ql = (ql & np.uint8(0x0F)).reshape(n, -1, 32)
    qh = b[:, 128:192].reshape(n, -1, 1, 32) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)
    qh = (qh & np.uint8(0x03)).reshape(n, -1, 32)
    q = ql | (qh << np.uint8(4))
    sub = np.ascontiguousarray(b[:, 192:208]).view(np.int8).astype(np.float32)
    scale = _f16(b[:, 208:210])[:, None] * sub
    return (q + np.uint8(96)).reshape(-1, 16), scale, None, 8


_DECODERS: dict[str, Callable[[np.ndarray], Decoded]] = {
    "Q4_0": _q4_0, "Q4_1": _q4_1, "Q4_K": _q4_k, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q5_K": _q5_k,
    "Q6_K": _q6_k, "Q8_0": _q8_0,
}
_BLOCK_VALUES = {"Q4_0": 32, "Q4_1": 32, "Q5_0": 32, "Q5_1": 32, "Q8_0": 32, "Q4_K": QK_K, "Q5_K": QK_K,
                 "Q6_K": QK_K}
