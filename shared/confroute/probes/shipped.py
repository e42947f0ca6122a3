"""The router probe that ships with confroute, and writing it into a bundle when the bundle is built.

The default edge bundle's TBG probe is trained by ``confroute-probe router`` (:mod:`confroute.probes.router`)
and kept in the repository as package data (``confroute/probes/default/router_tbg.json``, a few KB): the
weights of the layers the selection chose (float32, base64), the bias, and the provenance (data, seed, the
source's sha256, layers, graph version, held-out AUROC / APGR). A fresh machine's export writes it into the
bundle it builds, so ``pre`` and ``hybrid`` route from the first query without retraining.

A probe reads hidden states, so it fits a bundle only when they are the same model's: the same source file
(sha256), probe layer range and width. It was trained on one quantization's features (its provenance says
which); other builds of the same source (fp32, the exact 4-bit grid) read features that differ by their
quantization noise, which ``docs/router-probe.md`` measures. A bundle whose TBG probe is already trained
keeps it: the shipped probe is only a default.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from confroute.bundle.manifest import Manifest
from confroute.bundle.probe import write_probe
from confroute.bundle.store import load_bundle
from confroute.errors import InvalidInput, ProbeShapeMismatch

FORMAT = "confroute-shipped-probe/1"
SHIPPED_PACKAGE = "confroute.probes"
SHIPPED_FILE = "default/router_tbg.json"


@dataclasses.dataclass(frozen=True)
class ShippedProbe:
    """A trained probe for one output, over the layers ``layers`` of a bundle whose probe block spans
    ``probe_layers`` (``hidden`` features each), for bundles of the source ``source_sha256``."""

    output: str
    source_sha256: str
    probe_layers: tuple[int, int]
    hidden: int
    layers: tuple[int, int]
    weight: npt.NDArray[np.float32]  # the chosen layers' columns only
    bias: float
    provenance: Mapping[str, Any]

    def full_weight(self) -> npt.NDArray[np.float32]:
        """The weight over the bundle's whole probe feature vector (zeros outside ``layers``)."""
        first, last = self.probe_layers
        out = np.zeros((last - first + 1) * self.hidden, np.float32)
        out[(self.layers[0] - first) * self.hidden:(self.layers[1] - first + 1) * self.hidden] = self.weight
        return out

    def misfit(self, manifest: Manifest) -> str | None:
        """Why this probe cannot read ``manifest``'s hidden states, or None when it can."""
        probe = manifest.probe
        width = probe.feature_dim // (probe.last_layer - probe.first_layer + 1)
        if manifest.source.sha256 != self.source_sha256:
            return f"the bundle is built from another source ({manifest.source.sha256})"
        if (probe.first_layer, probe.last_layer) != self.probe_layers or width != self.hidden:
            return (f"the bundle's probe reads layers {probe.first_layer}..{probe.last_layer} x {width}, "
                    f"this probe {self.probe_layers[0]}..{self.probe_layers[1]} x {self.hidden}")
        if self.output not in probe.outputs:
            return f"the bundle has no {self.output!r} probe output"
        return None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "output": self.output, "source_sha256": self.source_sha256,
                "probe_layers": list(self.probe_layers), "hidden": self.hidden, "layers": list(self.layers),
                "bias": self.bias, "provenance": dict(self.provenance),
                "weight_f32le_base64": base64.b64encode(self.weight.astype("<f4").tobytes()).decode("ascii")}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> ShippedProbe:
        if record.get("format") != FORMAT:
            raise InvalidInput(f"not a shipped probe (format {record.get('format')!r}, expected {FORMAT})",
                               field="format")
        layers = (int(record["layers"][0]), int(record["layers"][1]))
        weight = np.frombuffer(base64.b64decode(record["weight_f32le_base64"]), dtype="<f4").astype(np.float32)
        if weight.size != (layers[1] - layers[0] + 1) * int(record["hidden"]):
            raise ProbeShapeMismatch(f"shipped probe holds {weight.size} weights for layers {layers}")
        return cls(str(record["output"]), str(record["source_sha256"]),
                   (int(record["probe_layers"][0]), int(record["probe_layers"][1])), int(record["hidden"]), layers,
                   weight, float(record["bias"]), dict(record["provenance"]))


def from_full_weight(output: str, manifest: Manifest, weight: npt.ArrayLike, bias: float, layers: tuple[int, int],
                     provenance: Mapping[str, Any]) -> ShippedProbe:
    """A shipped probe from a weight over ``manifest``'s whole probe vector (only ``layers`` are kept)."""
    probe = manifest.probe
    if manifest.source.sha256 is None:
        raise InvalidInput("a shipped probe needs a bundle whose source has a sha256", field="bundle")
    hidden = probe.feature_dim // (probe.last_layer - probe.first_layer + 1)
    full = np.asarray(weight, np.float32).reshape(-1)
    cols = slice((layers[0] - probe.first_layer) * hidden, (layers[1] - probe.first_layer + 1) * hidden)
    if full.size != probe.feature_dim or np.any(np.delete(full, np.arange(full.size)[cols]) != 0):
        raise ProbeShapeMismatch(f"weight must span {probe.feature_dim} features, zero outside layers {layers}")
    return ShippedProbe(output, manifest.source.sha256, (probe.first_layer, probe.last_layer), hidden, layers,
                        full[cols].copy(), float(bias), provenance)


def save_shipped(path: str | os.PathLike[str], probe: ShippedProbe) -> None:
    Path(path).write_text(json.dumps(probe.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")


def shipped_text() -> str:
    """The shipped router probe's file, from the installed package."""
    return resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_FILE).read_text(encoding="utf-8")


def load_shipped(path: str | os.PathLike[str] | None = None) -> ShippedProbe:
    """The probe saved at ``path``, by default the one shipped with the package."""
    text = shipped_text() if path is None else Path(path).read_text(encoding="utf-8")
    return ShippedProbe.from_json(json.loads(text))


def install_shipped(folder: str | os.PathLike[str], probe: ShippedProbe | None = None) -> str:
    """Writes the shipped probe into the bundle at ``folder`` unless its output is already trained or it
    does not fit; returns what happened, in words (for the build's progress line)."""
    if probe is None:
        try:
            probe = load_shipped()
        except FileNotFoundError:
            return "no router probe is shipped with this installation"
    manifest = load_bundle(folder, verify=False)
    if probe.output in manifest.probe.trained:
        return f"kept the bundle's own trained {probe.output} probe"
    if (why := probe.misfit(manifest)) is not None:
        return f"no shipped {probe.output} probe for this bundle: {why}"
    digest = hashlib.sha256(json.dumps(probe.to_json(), sort_keys=True).encode()).hexdigest()
    provenance = {**probe.provenance, "shipped": {"file": SHIPPED_FILE, "sha256": digest}}
    write_probe(folder, probe.output, probe.full_weight(), probe.bias, provenance)
    return f"wrote the shipped router probe ({probe.output}, layers {probe.layers[0]}..{probe.layers[1]})"
