"""Writing trained probe weights into an existing bundle: no torch, no onnx, no re-export.

The graph reads ``probe.weight`` [D, 2] and ``probe.bias`` [2] as external data from the probe file
(float32 weight, then float32 bias); replacing that file with the same layout changes the probes. The file
and the manifest (its sha256) change together: a process killed in the middle leaves the old probe or the
new one, never a bundle that fails its checks (``confroute.bundle.store.PENDING_MANIFEST``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from confroute.bundle.manifest import Manifest
from confroute.bundle.store import PENDING_MANIFEST, commit_pending, load_bundle, sha256_file, write_manifest
from confroute.errors import ProbeShapeMismatch


def read_probe(folder: Path, manifest: Manifest) -> tuple[np.ndarray, np.ndarray]:
    """The current probe weights [D, n_outputs] and biases [n_outputs]."""
    n_out = len(manifest.probe.outputs)
    raw = np.fromfile(folder / manifest.probe.file, dtype=np.float32)
    expected = manifest.probe.feature_dim * n_out + n_out
    if raw.size != expected:
        raise ProbeShapeMismatch(f"{manifest.probe.file} holds {raw.size} floats, expected {expected}")
    weight = raw[: -n_out].reshape(manifest.probe.feature_dim, n_out)
    return weight.copy(), raw[-n_out:].copy()


def write_probe(folder: str | os.PathLike[str], output: str, weight: np.ndarray, bias: float,
                provenance: Mapping[str, Any]) -> Manifest:
    """Sets probe ``output`` (``tbg`` or ``slt``) to ``sigmoid(features @ weight + bias)``.

    ``weight`` has one entry per probe feature (layers first..last concatenated). Returns the new manifest
    (its content ``version`` and ``probe_version`` change, its ``build_version`` does not: the policies of the
    build still reach the device, and a policy names the probe its thresholds were calibrated for).
    """
    path = Path(folder)
    manifest = load_bundle(path)
    if output not in manifest.probe.outputs:
        raise ProbeShapeMismatch(f"unknown probe output {output!r}; the bundle has {manifest.probe.outputs}")
    vector = np.asarray(weight, dtype=np.float32).reshape(-1)
    if vector.size != manifest.probe.feature_dim:
        raise ProbeShapeMismatch(
            f"probe weight has {vector.size} entries, the bundle's probe reads {manifest.probe.feature_dim} "
            f"features (layers {manifest.probe.first_layer}..{manifest.probe.last_layer})")
    if not np.all(np.isfinite(vector)) or not np.isfinite(bias):
        raise ProbeShapeMismatch("probe weights must be finite")
    weights, biases = read_probe(path, manifest)
    column = manifest.probe.outputs.index(output)
    weights[:, column] = vector
    biases[column] = bias
    trained = {**manifest.probe.trained, output: dict(provenance)}
    data = np.ascontiguousarray(weights, "<f4").tobytes() + np.ascontiguousarray(biases, "<f4").tobytes()
    return _install(path, manifest, data, trained)


@dataclasses.dataclass(frozen=True)
class ProbeSnapshot:
    """A bundle's whole probe: the probe file's bytes (every output) and which outputs are trained, with
    their provenance. Taken before a probe is replaced, it puts the bundle's probe back exactly
    (:func:`restore_probe`), an untrained output staying untrained."""

    data: bytes
    trained: Mapping[str, Mapping[str, Any]]

    def to_json(self) -> str:
        return json.dumps({"probe_f32le_base64": base64.b64encode(self.data).decode("ascii"),
                           "trained": {name: dict(info) for name, info in self.trained.items()}}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ProbeSnapshot:
        try:
            record = json.loads(text)
            return cls(base64.b64decode(record["probe_f32le_base64"], validate=True), dict(record["trained"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ProbeShapeMismatch(f"not a probe snapshot: {exc}") from exc


def snapshot_probe(folder: str | os.PathLike[str]) -> ProbeSnapshot:
    """The bundle's probe as it is now (see :class:`ProbeSnapshot`)."""
    path = Path(folder)
    manifest = load_bundle(path)
    read_probe(path, manifest)  # checks the file's size
    return ProbeSnapshot((path / manifest.probe.file).read_bytes(), dict(manifest.probe.trained))


def restore_probe(folder: str | os.PathLike[str], snapshot: ProbeSnapshot) -> Manifest:
    """Puts ``snapshot`` back into the bundle, as crash-safe as :func:`write_probe`; returns the manifest."""
    path = Path(folder)
    manifest = load_bundle(path)
    expected = (manifest.probe.feature_dim + 1) * len(manifest.probe.outputs) * 4
    if len(snapshot.data) != expected:
        raise ProbeShapeMismatch(f"the probe snapshot holds {len(snapshot.data)} bytes, the bundle's probe "
                                 f"{expected}")
    return _install(path, manifest, snapshot.data, snapshot.trained)


def _install(path: Path, manifest: Manifest, data: bytes, trained: Mapping[str, Mapping[str, Any]]) -> Manifest:
    """Replaces the probe file with ``data`` and the manifest's probe provenance with ``trained``."""
    probe_file = path / manifest.probe.file
    staged = _stage_probe_file(probe_file, data)
    files = {**manifest.files, manifest.probe.file: sha256_file(staged)}
    probe = dataclasses.replace(manifest.probe, trained={name: dict(info) for name, info in trained.items()})
    updated = dataclasses.replace(manifest, probe=probe, files=files)
    # Two files change; a crash between them must leave a bundle that loads (the old probe or the new one):
    # the new manifest is written as pending first, and load_bundle finishes or drops a pending update.
    write_manifest(path, updated, PENDING_MANIFEST)
    os.replace(staged, probe_file)
    commit_pending(path)
    return updated


def _stage_probe_file(path: Path, data: bytes) -> Path:
    """Writes the new probe file beside ``path`` (fsynced) and returns where."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp
