"""Builds a bundle from a loaded source: graph, head, probes, tokenizer, chat template, manifest."""

from __future__ import annotations

import dataclasses
import gc
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onnx import TensorProto

from confroute import __version__
from confroute.bundle.manifest import GRAPH_VERSION, HeadSpec, Manifest, ProbeSpec, QuantSpec
from confroute.bundle.probe import read_probe, write_probe
from confroute.bundle.store import MANIFEST_FILE, hash_files, load_bundle, write_atomically, write_manifest
from confroute.errors import ConfrouteError, ExportError
from confroute.modelkit.decoder import QuantConfig, build_decoder
from confroute.modelkit.graph import GraphBuilder
from confroute.modelkit.head import ProbeLayout, add_head, add_probes, default_probe_layers, untrained_probe
from confroute.modelkit.save import DATA_FILE, MODEL_FILE, PROBE_FILE, save_graph
from confroute.modelkit.sources import LoadedSource

OPSET = 18
TOKENIZER_FILE = "tokenizer.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
PARITY_FILE = "parity.json"
#: Used when a model ships no chat template (GPT-2): plain "role: content" turns.
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"
)


#: The edge bundle's 8-bit scheme (``confroute-export --int8``): symmetric codes (no zero points, as
#: onnxruntime-genai builds) in blocks of 64. Against blocks of 32 with zero points on SmolLM2-135M: faster
#: decoding (+6% in an ad-hoc trial of 9 interleaved rounds, each bundle in its own process; not a number
#: bench.edge_generation prints) for parity KL 0.0084 instead of 0.0043 (the export's parity report);
#: blocks of 128 gave parity KL 0.0122, over the 0.01 the 8-bit bundle must keep.
EDGE_INT8 = QuantSpec(block_size=64, symmetric=True)
#: ``confroute-export --int4``: every weight on its GGUF source's own grid (:mod:`confroute.modelkit.grid`),
#: so the bundle holds exactly the values the source means; ``bits`` and ``block_size`` describe the
#: 4-bit grids (Q4_0/Q4_1/Q4_K), while Q5/Q6_K/Q8_0 tensors keep 8-bit codes in their own blocks.
SOURCE_GRID = "source-grid"
EDGE_INT4 = QuantSpec(method=SOURCE_GRID, bits=4, block_size=32, accuracy_level=4, symmetric=True)


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What to build: quantization (None = fp32), probe layer range (None = mid-to-late default)."""

    quantization: QuantSpec | None = None
    probe_layers: tuple[int, int] | None = None
    opset: int = OPSET
    #: False builds the plain graph (logits + KV only): the baseline that measures what the head costs.
    #: Such a bundle is for benchmarks; the engine needs the head.
    head: bool = True
    #: With quantization: also build the fp32 graph (in a temporary folder) and write ``parity.json``.
    parity: bool = True


def export_bundle(source: LoadedSource, dest: Path, options: ExportOptions,
                  progress: Callable[[str], None] = print) -> Manifest:
    """Writes a complete bundle to ``dest`` (atomically: staging folder, then rename)."""
    spec = source.spec
    first, last = options.probe_layers or default_probe_layers(spec.num_layers)
    if not 0 <= first <= last < spec.num_layers:
        raise ExportError(f"probe layers {first}..{last} are outside the model's 0..{spec.num_layers - 1}")
    layout = ProbeLayout(first, last, spec.hidden_size)
    if options.quantization is not None and options.quantization.method == SOURCE_GRID and not source.grids:
        raise ExportError(f"{source.model_id}: --int4 keeps a GGUF source's own quantization grid; this source "
                          "has no quantized tensors (use --int8)")
    with write_atomically(dest) as staging:
        progress(f"building the ONNX graph ({spec.model_type}, {spec.num_layers} layers, "
                 f"{_precision(options.quantization)}, probes on layers {first}..{last})")
        gb = _build_graph(source, layout, options.quantization, options.head)
        progress("writing model.onnx and its external data")
        total = sum(a.nbytes for a in gb.initializers.values())
        with _byte_bar(total, "writing weights") as bar:
            save_graph(gb.to_model(source.model_id, options.opset), gb.initializers, staging, bar.update)
        del gb
        gc.collect()
        (staging / TOKENIZER_FILE).write_text(source.tokenizer_json, encoding="utf-8")
        (staging / CHAT_TEMPLATE_FILE).write_text(source.chat_template or PLAIN_CHAT_TEMPLATE, encoding="utf-8")
        manifest = _manifest(source, options, layout, staging, [])
        write_manifest(staging, manifest)
        extra = []
        if options.quantization is not None and options.parity and options.head:
            _write_parity(source, options, staging, progress)
            extra = [PARITY_FILE]
        progress("hashing files")
        manifest = _manifest(source, options, layout, staging, extra)
        write_manifest(staging, manifest)
        if options.head:
            manifest = _carry_trained_probes(dest, staging, manifest, progress)
            manifest = _shipped_router_probe(staging, manifest, progress)
    progress(f"bundle {manifest.model_id} version {manifest.version} written to {dest}")
    return manifest


def _carry_trained_probes(old: Path, new: Path, manifest: Manifest, progress: Callable[[str], None]) -> Manifest:
    """Keeps the probes trained into the bundle this export replaces, when they read the same hidden
    states: the same source file (by sha256; sources without one never qualify), model, quantization and
    probe layers. A re-export for a newer graph then loses no training."""
    try:
        previous = load_bundle(old, verify=False)  # read_probe checks the probe file's size
    except ConfrouteError:  # nothing there, or no manifest that loads
        return manifest
    same = (previous.source.sha256 is not None and previous.source == manifest.source
            and previous.model_id == manifest.model_id and previous.quantization == manifest.quantization
            and (previous.probe.first_layer, previous.probe.last_layer)
            == (manifest.probe.first_layer, manifest.probe.last_layer))
    if not previous.probe.trained or not same:
        return manifest
    weights, biases = read_probe(old, previous)
    for output, provenance in previous.probe.trained.items():
        column = previous.probe.outputs.index(output)
        manifest = write_probe(new, output, weights[:, column], float(biases[column]), provenance)
    progress(f"kept the trained probes ({', '.join(previous.probe.trained)}) of the bundle this one replaces")
    return manifest


def _shipped_router_probe(folder: Path, manifest: Manifest, progress: Callable[[str], None]) -> Manifest:
    """Writes the router probe shipped with confroute (:mod:`confroute.probes.shipped`) into a bundle whose
    TBG probe is still untrained and whose hidden states it reads; any other bundle is left as it is."""
    from confroute.probes.shipped import install_shipped

    progress(install_shipped(folder))
    return load_bundle(folder, verify=False)


def _byte_bar(total: int, label: str) -> Any:
    """A progress bar on stderr (only when it is a terminal: logs and CI stay clean)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="B", unit_scale=True, disable=not sys.stderr.isatty(), leave=False)


def _precision(quant: QuantSpec | None) -> str:
    if quant is None:
        return "fp32"
    return "the source's own 4/8-bit grids" if quant.method == SOURCE_GRID else f"{quant.bits}-bit"


def _suffix(quant: QuantSpec | None) -> str:
    if quant is None:
        return ""
    return "-int4" if quant.method == SOURCE_GRID else "-int8"


def _build_graph(source: LoadedSource, layout: ProbeLayout, quant: QuantSpec | None, head: bool) -> GraphBuilder:
    gb = GraphBuilder()
    qconfig = QuantConfig(quant.bits, quant.block_size, quant.accuracy_level, quant.symmetric,
                          source_grids=quant.method == SOURCE_GRID) if quant else None
    dec = build_decoder(gb, source.spec, source.weights, qconfig, source.grids)
    if head:
        add_head(gb, dec, "vocab", source.spec.vocab_size)
        add_probes(gb, dec, layout, *untrained_probe(layout))
    else:
        gb.add_output(dec.logits, "logits", TensorProto.FLOAT, ["batch", "vocab"])
    return gb


def _write_parity(source: LoadedSource, options: ExportOptions, staging: Path,
                  progress: Callable[[str], None]) -> None:
    """Builds the fp32 graph from the same weights next door and reports the quantized one against it."""
    from confroute.modelkit.parity import compare_bundles

    progress("parity: building the fp32 reference from the same weights")
    with tempfile.TemporaryDirectory(dir=staging.parent, prefix=".parity-") as tmp:
        reference = Path(tmp) / "fp32"
        export_bundle(source, reference, dataclasses.replace(options, quantization=None), lambda _m: None)
        report = compare_bundles(reference, staging)
    (staging / PARITY_FILE).write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    progress(f"parity vs fp32 over {report.positions} positions: mean KL {report.mean_kl:.4f}, "
             f"top-1 agreement {report.top1_agreement:.3f}, max |logit diff| {report.max_abs_logit_diff:.3f}")


def _manifest(source: LoadedSource, options: ExportOptions, layout: ProbeLayout, folder: Path,
              extra: list[str]) -> Manifest:
    spec = source.spec
    names = [MODEL_FILE, DATA_FILE, PROBE_FILE, TOKENIZER_FILE, CHAT_TEMPLATE_FILE, *extra]
    kv = [f"{kind}.{i}.{part}" for i in range(spec.num_layers) for kind, part in
          (("past_key_values", "key"), ("past_key_values", "value"))]
    present = [name.replace("past_key_values", "present") for name in kv]
    model_id = source.model_id + _suffix(options.quantization)
    head = HeadSpec()
    return Manifest(
        model_id=model_id, source=source.info, architecture=spec.to_dict(), context_length=spec.max_positions,
        opset=options.opset, inputs=("input_ids", "attention_mask", *kv),
        outputs=("logits", *head.outputs, "probe_features", "probe", *present), head=head,
        probe=ProbeSpec(first_layer=layout.first, last_layer=layout.last, feature_dim=layout.feature_dim),
        quantization=options.quantization, tokenizer_file=TOKENIZER_FILE, chat_template_file=CHAT_TEMPLATE_FILE,
        eos_token_ids=source.eos_token_ids, files=hash_files(folder, names),
        created_by=f"confroute {__version__}", graph_version=GRAPH_VERSION,
    )


__all__ = ["EDGE_INT4", "EDGE_INT8", "MANIFEST_FILE", "SOURCE_GRID", "ExportOptions", "export_bundle"]
