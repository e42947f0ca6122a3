"""A router probe as the retrain worker publishes it: weights over the bundle's probe features, and where
they came from. Its version is a digest of its weights, so the same probe always has the same version."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from confroute.errors import InvalidInput

FORMAT = "confroute-router-probe/1"


@dataclass(frozen=True)
class RouterProbe:
    """The TBG router probe for one (edge model build version, cohort): ``sigmoid(x @ weight + bias)``
    over the bundle's whole probe feature vector."""

    edge_model_version: str
    cohort: str
    weight: npt.NDArray[np.float32]
    bias: float
    layers: tuple[int, int]
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        digest = hashlib.sha256(np.asarray(self.weight, "<f4").tobytes() + repr(float(self.bias)).encode())
        return f"probe-{digest.hexdigest()[:16]}"

    def score(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """The probe's logit per row of ``features``."""
        return np.asarray(features, np.float64) @ np.asarray(self.weight, np.float64) + self.bias

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "version": self.version, "edge_model_version": self.edge_model_version,
            "cohort": self.cohort, "layers": list(self.layers), "bias": float(self.bias),
            "weight_f32le_base64": base64.b64encode(np.asarray(self.weight, "<f4").tobytes()).decode("ascii"),
            "provenance": dict(self.provenance)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RouterProbe:
        record = json.loads(text)
        if record.get("format") != FORMAT:
            raise InvalidInput(f"not a router probe (format {record.get('format')!r})", field="format")
        weight = np.frombuffer(base64.b64decode(record["weight_f32le_base64"]), "<f4").astype(np.float32)
        probe = cls(str(record["edge_model_version"]), str(record["cohort"]), weight, float(record["bias"]),
                    (int(record["layers"][0]), int(record["layers"][1])), dict(record["provenance"]))
        if probe.version != record.get("version"):
            raise InvalidInput("the router probe's version does not match its weights", field="version")
        return probe
