"""bench.streaming: bytes a decode step streams (gathered tables left out) and a copy bandwidth."""

from __future__ import annotations

from pathlib import Path

from bench.streaming import copy_bandwidth, streamed_bytes


def test_the_embedding_table_is_not_streamed_but_the_output_layer_is(tmp_path: Path) -> None:
    from confroute.modelkit.export import EDGE_INT4, ExportOptions, export_bundle
    from confroute.modelkit.tiny import tiny_grid_source

    export_bundle(tiny_grid_source("llama"), tmp_path / "b", ExportOptions(quantization=EDGE_INT4, parity=False),
                  lambda _m: None)
    streamed = streamed_bytes(tmp_path / "b" / "model.onnx")
    # 4 layers of 4-bit codes (0.5 byte/weight) + fp32 scales and offsets (2 x 4 bytes per 32 weights),
    # and the tied Q8_0 output layer (320 x 64 bytes + a scale per 32); not its gathered embedding copy
    layer = 64 * (64 + 2 * 32) + 64 * 64 + 3 * 64 * 128
    expected_weights = 4 * layer * (0.5 + 8 / 32) + 320 * 64 * (1 + 4 / 32)
    assert expected_weights <= streamed < expected_weights + 20_000


def test_copy_bandwidth_is_a_positive_rate() -> None:
    assert copy_bandwidth(threads=2, mbytes=8, repeats=2) > 1e7
