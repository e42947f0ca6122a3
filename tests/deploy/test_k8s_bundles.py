"""The cloud service's bundle folder (docs/bundle-delivery.md) in the rendered overlays: CONFROUTE_CLOUD_BUNDLE_DIR
lies on a mounted PersistentVolumeClaim that every replica shares (ReadWriteMany where replicas may spread over
nodes) and the service may write (bundle publish and prune run in its pods)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.deploy.tools import OVERLAYS

pytestmark = pytest.mark.deploy

Doc = dict[str, Any]
BUNDLE_DIR = "CONFROUTE_CLOUD_BUNDLE_DIR"


def _named(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _bundle_claim(docs: list[Doc]) -> tuple[Doc, Doc]:
    """The cloud-service Deployment and the claim its bundle folder is on."""
    deployment = _named(docs, "Deployment", "cloud-service")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "cloud-service"]
    folder = PurePosixPath(next(e["value"] for e in container["env"] if e["name"] == BUNDLE_DIR))
    (mount,) = [m for m in container["volumeMounts"] if folder.is_relative_to(m["mountPath"])]
    assert not mount.get("readOnly"), "bundle publish and prune run in the service's pods"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return deployment, _named(docs, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_bundle_folder_is_on_a_claim_every_replica_mounts(
        manifests: dict[str, list[Doc]], overlay: str) -> None:
    docs = manifests[overlay]
    deployment, claim = _bundle_claim(docs)
    hpa = _named(docs, "HorizontalPodAutoscaler", "cloud-service")
    assert int(claim["spec"]["resources"]["requests"]["storage"].removesuffix("Gi")) >= 5
    if overlay == "cpu-dev":  # one node: ReadWriteOnce is shared by the pods on it (small.yaml says why)
        assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    else:
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
        assert hpa["spec"]["maxReplicas"] > 1 and deployment["spec"]["replicas"] > 1
