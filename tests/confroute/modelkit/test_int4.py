"""Exact 4-bit bundles: weights on the GGUF source's own grid, equal to the source's dequantized product
up to the activation rounding of ``accuracy_level=4``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from confroute.bundle.manifest import QuantSpec
from confroute.errors import ExportError
from confroute.modelkit.export import EDGE_INT4, ExportOptions, export_bundle
from confroute.modelkit.grid import decode, stack_rows, supported_types
from confroute.modelkit.parity import ParityReport, compare_bundles
from confroute.modelkit.sources import LoadedSource
from confroute.modelkit.spec import DecoderSpec
from confroute.modelkit.tiny import gguf_blocks, tiny_grid_source, tiny_source

EXACT = dataclasses.replace(EDGE_INT4, accuracy_level=0)  # float activations: the product itself
K_SPEC = DecoderSpec(model_type="qwen2", family="llama", vocab_size=320, hidden_size=256, num_layers=2,
                     num_heads=4, num_kv_heads=2, head_dim=64, intermediate_size=512, norm_eps=1e-5,
                     max_positions=256, qkv_bias=True, tie_embeddings=False)


@pytest.mark.parametrize("kind", supported_types())
def test_every_grid_type_decodes_to_exactly_what_gguf_dequantizes(kind: str) -> None:
    from gguf import GGMLQuantizationType, quants

    rng = np.random.default_rng(0)
    rows = (rng.standard_normal((6, 512)) * 0.05).astype(np.float32)
    raw = gguf_blocks(kind, rows, rng)
    grid = decode(kind, raw, 512)
    assert grid is not None and grid.codes.shape == (6, 512 // grid.block, grid.block)
    np.testing.assert_array_equal(grid.dequantize(), quants.dequantize(raw, GGMLQuantizationType[kind]))


def test_types_without_a_grid_are_left_to_float32() -> None:
    assert decode("F16", np.zeros((2, 64), np.uint8), 32) is None


def test_4bit_codes_pack_two_per_byte_low_nibble_first_and_move_to_8_bits_exactly() -> None:
    rows = np.linspace(-1, 1, 64, dtype=np.float32)[None]
    grid = decode("Q4_1", gguf_blocks("Q4_1", rows, np.random.default_rng(0)), 64)
    assert grid is not None
    packed = grid.packed()
    assert packed.shape == (1, 2, 16)
    np.testing.assert_array_equal(packed & 0x0F, grid.codes[..., 0::2])
    np.testing.assert_array_equal(packed >> 4, grid.codes[..., 1::2])
    np.testing.assert_array_equal(grid.as_8bit().dequantize(), grid.dequantize())


def test_grids_of_different_bits_do_not_stack() -> None:
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((4, 64)).astype(np.float32)
    q4, q8 = (decode(k, gguf_blocks(k, rows, rng), 64) for k in ("Q4_0", "Q8_0"))
    assert q4 is not None and q8 is not None
    assert stack_rows([q4, q8]) is None
    both = stack_rows([q4, q4])
    assert both is not None and both.rows == 8 and both.offsets is None


def _parity(source: LoadedSource, quant: QuantSpec, tmp_path: Path) -> ParityReport:
    fp32, grid = tmp_path / "fp32", tmp_path / "grid"
    export_bundle(source, fp32, ExportOptions(), lambda _m: None)
    export_bundle(source, grid, ExportOptions(quantization=quant, parity=False), lambda _m: None)
    return compare_bundles(fp32, grid, new_tokens=12)


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_a_q4_1_source_on_its_grid_computes_the_dequantized_product(model_type: str, tmp_path: Path) -> None:
    report = _parity(tiny_grid_source(model_type), EXACT, tmp_path)
    assert report.max_abs_logit_diff < 1e-3 and report.top1_agreement == 1.0


def test_q_k_and_v_on_grids_that_do_not_stack_are_three_projections(tmp_path: Path) -> None:
    source = tiny_grid_source("qwen2", {"v": "Q5_1", "k": "Q4_0", "down": "Q5_0", "embed": "Q4_1"})
    report = _parity(source, EXACT, tmp_path)
    assert report.max_abs_logit_diff < 1e-3 and report.top1_agreement == 1.0


def test_k_quants_keep_their_sub_blocks(tmp_path: Path) -> None:
    """The cloud model's mix: Q4_K matmuls, Q6_K (8-bit blocks of 16) for v, down and the output layer."""
    types = {"embed": "Q4_K", "lm_head": "Q6_K", "v": "Q6_K", "down": "Q6_K", "gate": "Q4_K", "up": "Q4_K",
             "q": "Q4_K", "k": "Q4_K", "o": "Q5_K"}
    report = _parity(tiny_grid_source("qwen2", types, spec=K_SPEC), EXACT, tmp_path)
    assert report.max_abs_logit_diff < 1e-3 and report.top1_agreement == 1.0


def test_with_int8_activations_only_the_activation_rounding_remains(tmp_path: Path) -> None:
    report = _parity(tiny_grid_source("llama"), EDGE_INT4, tmp_path)
    assert report.mean_kl < 1e-3


def test_the_int4_bundle_is_named_and_described_as_such(tmp_path: Path) -> None:
    manifest = export_bundle(tiny_grid_source("llama"), tmp_path / "b", ExportOptions(quantization=EDGE_INT4),
                             lambda _m: None)
    assert manifest.model_id.endswith("-int4") and manifest.quantization == EDGE_INT4
    assert "parity.json" in manifest.files


def test_int4_needs_a_source_with_quantized_tensors(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="--int8"):
        export_bundle(tiny_source("llama"), tmp_path / "b", ExportOptions(quantization=EDGE_INT4), lambda _m: None)


def test_llama_q_and_k_rows_are_put_back_in_transformers_order() -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    from confroute.modelkit.gguf_grids import _canonical, _rotary_order

    rows = np.arange(3 * 8 * 2, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    theirs = LlamaTensorProcessor()._reverse_permute_weights(rows, 3, 3)  # type: ignore[no-untyped-call]
    np.testing.assert_array_equal(rows[_rotary_order(rows.shape[0], 3)], theirs)
    assert [_canonical(n) for n in ("blk.3.attn_q.weight", "token_embd.weight", "output.weight",
                                    "blk.0.attn_norm.weight", "blk.1.attn_q.bias")] == ["L3.q", "embed", "lm_head",
                                                                                          None, None]
