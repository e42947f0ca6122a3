"""8-bit block-wise weight-only quantization in the layout of onnxruntime's ``MatMulNBits``.

Activations stay float (``quantize_dynamic``'s 8-bit activations break SmolLM2: KL ~0.7); weights are
quantized per block of ``block_size`` input features with a uint8 code, asymmetric (a zero point per
block) or symmetric (codes centred on 128, no zero points), which keeps the model (SmolLM2-135M, parity
KL 0.0043 asymmetric in blocks of 32, 0.0084 symmetric in blocks of 64: see ``export.EDGE_INT8``).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class BlockQuantized:
    """``rows`` [N, n_blocks, block] uint8 codes; value = (code - zero_point) * scale."""

    codes: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray
    in_features: int

    @property
    def n_blocks(self) -> int:
        return int(self.codes.shape[1])

    @property
    def block_size(self) -> int:
        return int(self.codes.shape[2])

    def dequantize(self) -> np.ndarray:
        values = (self.codes.astype(np.float32) - self.zero_points[..., None].astype(np.float32))
        values *= self.scales[..., None]
        return values.reshape(values.shape[0], -1)[:, : self.in_features]


def quantize_rows(rows: np.ndarray, block_size: int = 32, symmetric: bool = False) -> BlockQuantized:
    """Quantizes a [N, K] matrix (one row per output feature) block-wise along K.

    ``symmetric``: zero point fixed at 128 (MatMulNBits' default when no zero points are given), scale
    max|w| / 127; otherwise each block gets its own zero point and the full [min, max] range.
    """
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two >= 16, got {block_size}")
    n, k = rows.shape
    n_blocks = -(-k // block_size)
    padded = np.zeros((n, n_blocks * block_size), dtype=np.float32)
    padded[:, :k] = rows
    blocks = padded.reshape(n, n_blocks, block_size)
    if symmetric:
        return _symmetric(blocks, k)
    lo = np.minimum(blocks.min(axis=2), 0.0)
    hi = np.maximum(blocks.max(axis=2), 0.0)
    scales = ((hi - lo) / 255.0).astype(np.float32)
    scales[scales == 0] = 1.0
    zero_points = np.clip(np.rint(-lo / scales), 0, 255).astype(np.uint8)
    codes = np.rint(blocks / scales[..., None]) + zero_points[..., None]
    return BlockQuantized(np.clip(codes, 0, 255).astype(np.uint8), scales, zero_points, k)


def _symmetric(blocks: np.ndarray, k: int) -> BlockQuantized:
    scales = (np.abs(blocks).max(axis=2) / 127.0).astype(np.float32)
    scales[scales == 0] = 1.0
    codes = np.clip(np.rint(blocks / scales[..., None]) + 128, 0, 255).astype(np.uint8)
    return BlockQuantized(codes, scales, np.full(scales.shape, 128, dtype=np.uint8), k)
