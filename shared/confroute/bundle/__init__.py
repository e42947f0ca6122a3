"""The edge model bundle: a folder with ``model.onnx`` (+ external data), the tokenizer, the chat template
and ``manifest.json``. Reading, verifying and atomically writing bundles; re-writing probe weights."""

from confroute.bundle.manifest import HeadSpec, Manifest, ProbeSpec, QuantSpec, SourceInfo
from confroute.bundle.store import load_bundle, needs_export, sha256_file, write_atomically

__all__ = ["HeadSpec", "Manifest", "ProbeSpec", "QuantSpec", "SourceInfo", "load_bundle", "needs_export",
           "sha256_file", "write_atomically"]
