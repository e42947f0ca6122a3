from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from confroute.modelkit.quantize import quantize_rows


def test_block_quantization_round_trips_within_half_a_step() -> None:
    rows = np.random.default_rng(0).standard_normal((40, 100)).astype(np.float32)
    q = quantize_rows(rows, block_size=32)
    assert q.codes.shape == (40, 4, 32) and q.codes.dtype == np.uint8
    step = np.repeat(q.scales, 32, axis=1)[:, :100]
    assert np.all(np.abs(q.dequantize() - rows) <= step / 2 + 1e-6)


def test_constant_blocks_and_zero_blocks_survive() -> None:
    rows = np.zeros((2, 32), np.float32)
    rows[1] = 3.0
    np.testing.assert_allclose(quantize_rows(rows, 32).dequantize(), rows, atol=1e-2)


def test_block_size_must_be_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        quantize_rows(np.zeros((1, 48), np.float32), 24)


def test_symmetric_quantization_uses_the_default_zero_point_and_round_trips() -> None:
    rows = np.random.default_rng(1).standard_normal((8, 64)).astype(np.float32)
    q = quantize_rows(rows, block_size=32, symmetric=True)
    assert np.all(q.zero_points == 128)
    np.testing.assert_allclose(q.dequantize(), rows, atol=float(q.scales.max()) / 2 + 1e-6)


def test_a_symmetric_8bit_bundle_stays_close_to_fp32(tmp_path: Path) -> None:
    from confroute.bundle.manifest import QuantSpec
    from confroute.modelkit.export import ExportOptions, export_bundle
    from confroute.modelkit.tiny import tiny_source

    export_bundle(tiny_source("llama"), tmp_path / "b", ExportOptions(quantization=QuantSpec(symmetric=True)),
                  lambda _m: None)
    parity = json.loads((tmp_path / "b" / "parity.json").read_text())
    assert parity["mean_kl"] < 0.01 and parity["top1_agreement"] > 0.9
