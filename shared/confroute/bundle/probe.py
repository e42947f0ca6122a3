"""Writing trained probe weights into an existing bundle: no torch, no onnx, no re-export.

The graph reads ``probe.weight`` [D, 2] and ``probe.bias`` [2] as external data from the probe file
(float32 weight, then float32 bias); replacing that file with the same layout changes the probes. The file
and the manifest (its sha256) change together: a process killed in the middle leaves the old probe or the
new one, never a bundle that fails its checks (``confroute.bundle.store.PENDING_MANIFEST``).
"""

from __future__ import annotations

import dataclasses
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
    probe_file = path / manifest.probe.file
    staged = _stage_probe_file(probe_file, weights, biases)
    trained = {**manifest.probe.trained, output: dict(provenance)}
    files = {**manifest.files, manifest.probe.file: sha256_file(staged)}
    updated = dataclasses.replace(manifest, probe=dataclasses.replace(manifest.probe, trained=trained), files=files)
    # Two files change; a crash between them must leave a bundle that loads (the old probe or the new one):
    # the new manifest is written as pending first, and load_bundle finishes or drops a pending update.
    write_manifest(path, updated, PENDING_MANIFEST)
    os.replace(staged, probe_file)
    commit_pending(path)
    return updated


def _stage_probe_file(path: Path, weights: np.ndarray, biases: np.ndarray) -> Path:
    """Writes the new probe file beside ``path`` (fsynced) and returns where."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(np.ascontiguousarray(weights, dtype=np.float32).tobytes())
        f.write(np.ascontiguousarray(biases, dtype=np.float32).tobytes())
        f.flush()
        os.fsync(f.fileno())
    return tmp
