"""A router probe as the fleet delivers it: weights over a build's probe features, their provenance, and an
Ed25519 signature (:mod:`confroute.signing.probe_signature`).

Its version is a digest of its weights and bias, so the same probe always has the same version and a
policy that names the version (``Policy.probe_version``) names exactly these weights. Built by the retrain
worker in the cloud; checked, and written into the bundle with ``confroute.bundle.probe.write_probe``, by
the device.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from confroute.contract import _checks as check
from confroute.errors import InvalidInput, InvalidPolicy
from confroute.v1 import fleet_pb2

FORMAT = "confroute-router-probe/1"
VERSION_PREFIX = "probe-"


def probe_version_of(weight_f32le: bytes, bias: float) -> str:
    """``probe-`` + 16 hex digits of SHA-256 over the weights' float32 bytes and the bias' repr."""
    digest = hashlib.sha256(weight_f32le + repr(float(bias)).encode())
    return f"{VERSION_PREFIX}{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class RouterProbe:
    """The TBG router probe for one (edge model build version, cohort): ``sigmoid(x @ weight + bias)`` over
    the bundle's whole probe feature vector. ``weight_f32le`` holds the weights as float32 little-endian
    bytes (so the probe compares and hashes as plain data); :attr:`weight` gives them as an array."""

    edge_model_version: str
    cohort: str
    weight_f32le: bytes
    bias: float
    layers: tuple[int, int]
    provenance: Mapping[str, Any] = field(default_factory=dict)
    signature: bytes = b""
    key_id: str = ""

    def __post_init__(self) -> None:
        check.nonempty(self.edge_model_version, "probe.edge_model_version", InvalidPolicy)
        if not self.weight_f32le or len(self.weight_f32le) % 4:
            raise InvalidPolicy("probe weights must be a non-empty float32 vector", field="probe.weight_f32le")
        if not (np.all(np.isfinite(self.weight)) and np.isfinite(self.bias)):
            raise InvalidPolicy("probe weights must be finite", field="probe.weight_f32le")

    @classmethod
    def of(cls, edge_model_version: str, cohort: str, weight: npt.ArrayLike, bias: float, layers: tuple[int, int],
           provenance: Mapping[str, Any] | None = None) -> RouterProbe:
        """An unsigned probe from a weight vector."""
        raw = np.asarray(weight, "<f4").reshape(-1).tobytes()
        return cls(edge_model_version, cohort, raw, float(bias), layers, dict(provenance or {}))

    @property
    def weight(self) -> npt.NDArray[np.float32]:
        return np.frombuffer(self.weight_f32le, "<f4").astype(np.float32)

    @property
    def version(self) -> str:
        return probe_version_of(self.weight_f32le, self.bias)

    def unsigned(self) -> RouterProbe:
        return replace(self, signature=b"", key_id="")

    def score(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """The probe's logit per row of ``features``."""
        return np.asarray(features, np.float64) @ np.asarray(self.weight, np.float64) + self.bias

    def to_pb(self) -> fleet_pb2.RouterProbe:
        return fleet_pb2.RouterProbe(
            version=self.version, edge_model_version=self.edge_model_version, cohort=self.cohort,
            weight_f32le=self.weight_f32le, bias=self.bias, first_layer=self.layers[0], last_layer=self.layers[1],
            provenance_json=json.dumps(dict(self.provenance), sort_keys=True), signature=self.signature,
            key_id=self.key_id)

    @classmethod
    def from_pb(cls, pb: fleet_pb2.RouterProbe) -> RouterProbe:
        """The probe a message holds; InvalidPolicy (``probe.<field>``) when malformed or its version does not
        match its weights."""
        try:
            provenance = json.loads(pb.provenance_json or "{}")
        except ValueError as exc:
            raise InvalidPolicy(f"probe provenance is not JSON: {exc}", field="probe.provenance_json") from exc
        if not isinstance(provenance, dict):
            raise InvalidPolicy("probe provenance must be a JSON object", field="probe.provenance_json")
        probe = cls(pb.edge_model_version, pb.cohort, pb.weight_f32le, pb.bias, (pb.first_layer, pb.last_layer),
                    provenance, pb.signature, pb.key_id)
        if probe.version != pb.version:
            raise InvalidPolicy(f"probe version {pb.version!r} does not match its weights ({probe.version})",
                                field="probe.version")
        return probe

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "version": self.version, "edge_model_version": self.edge_model_version,
            "cohort": self.cohort, "layers": list(self.layers), "bias": float(self.bias),
            "weight_f32le_base64": base64.b64encode(self.weight_f32le).decode("ascii"),
            "provenance": dict(self.provenance), "key_id": self.key_id,
            "signature_base64": base64.b64encode(self.signature).decode("ascii")}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RouterProbe:
        """A probe from :meth:`to_json` (records without a signature read as unsigned)."""
        record = json.loads(text)
        if record.get("format") != FORMAT:
            raise InvalidInput(f"not a router probe (format {record.get('format')!r})", field="format")
        probe = cls(str(record["edge_model_version"]), str(record["cohort"]),
                    base64.b64decode(record["weight_f32le_base64"]), float(record["bias"]),
                    (int(record["layers"][0]), int(record["layers"][1])), dict(record["provenance"]),
                    base64.b64decode(record.get("signature_base64", "")), str(record.get("key_id", "")))
        if probe.version != record.get("version"):
            raise InvalidInput("the router probe's version does not match its weights", field="version")
        return probe
