"""confroute-export's flags: the edge 8-bit scheme by default, the older one on request."""

from __future__ import annotations

from pathlib import Path

from confroute.bundle.manifest import QuantSpec
from confroute.modelkit.cli import parse_args
from confroute.modelkit.export import EDGE_INT8


def test_int8_builds_the_edge_scheme_by_default(tmp_path: Path) -> None:
    config = parse_args(["--int8", "-o", str(tmp_path / "b")], {"CONFROUTE_CACHE_DIR": str(tmp_path)})
    assert config.options.quantization == EDGE_INT8 == QuantSpec(block_size=64, symmetric=True)


def test_zero_points_and_a_block_size_select_the_asymmetric_scheme(tmp_path: Path) -> None:
    argv = ["--int8", "--zero-points", "--block-size", "32", "-o", str(tmp_path / "b")]
    config = parse_args(argv, {"CONFROUTE_CACHE_DIR": str(tmp_path)})
    assert config.options.quantization == QuantSpec(block_size=32, symmetric=False)


def test_without_int8_the_bundle_is_fp32(tmp_path: Path) -> None:
    assert parse_args(["-o", str(tmp_path / "b")], {}).options.quantization is None


def test_int4_keeps_the_sources_grid_in_its_own_folder(tmp_path: Path) -> None:
    from confroute.modelkit.export import EDGE_INT4

    config = parse_args(["--int4"], {"CONFROUTE_CACHE_DIR": str(tmp_path)})
    assert config.options.quantization == EDGE_INT4
    assert config.output == tmp_path / "bundles" / "smollm2-135m-instruct-int4"
