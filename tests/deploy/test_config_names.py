"""The settings the deployment files pass are settings the programs read: every ``CONFROUTE_CLOUD_*`` and
``CONFROUTE_EDGE_*`` variable names a real option, and every container's arguments parse with the real CLI."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from cloud_service.cli import _parser as cloud_parser
from cloud_service.config import ENV_PREFIX, ServiceConfig
from edge_agent.config import ENV as EDGE_PREFIX
from edge_agent.config import SETTINGS as EDGE_SETTINGS
from tests.deploy.tools import DEPLOY, OVERLAYS

pytestmark = pytest.mark.deploy

# Read by the service only once device identity (issue 15) is merged; docs/deployment.md says so.
PENDING_CLOUD = {"TLS_CERT", "TLS_KEY", "TLS_CLIENT_CA"}
# Read by the agent from the environment directly rather than through a flag of the same name.
EDGE_ENV_ONLY = {"TOKEN", "PRIVACY_PATTERNS", "POLICY_KEYS", "CORS_ORIGINS"}
EDGE_FILES = [DEPLOY / "pi" / "confroute-edge.service", DEPLOY / "pi" / "edge.env.example",
              DEPLOY / "jetson" / "confroute-edge.service", DEPLOY / "jetson" / "compose.yaml",
              DEPLOY / "jetson" / "Dockerfile", DEPLOY / "jetson" / "confroute-bundle-update.service"]


def cloud_containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for doc in docs if doc["kind"] in ("Deployment", "StatefulSet")
            for c in doc["spec"]["template"]["spec"]["containers"] if "cloud-service" in c["image"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_cloud_variable_is_a_service_setting(manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    fields = {spec.name.upper() for spec in dataclasses.fields(ServiceConfig)}
    names = {env["name"].removeprefix(ENV_PREFIX) for c in cloud_containers(manifests[overlay])
             for env in c.get("env", []) if env["name"].startswith(ENV_PREFIX)}

    assert names and names - PENDING_CLOUD <= fields


def expand(arg: str, container: dict[str, Any]) -> str:
    """``$(VAR)`` as the kubelet expands it; variables from ConfigMaps become a well-formed placeholder."""
    literal = {e["name"]: e.get("value", "edge-model-version/cohort") for e in container.get("env", [])}
    return re.sub(r"\$\((\w+)\)", lambda m: literal[m.group(1)], arg)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_cloud_container_command_parses(manifests: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    for container in cloud_containers(manifests[overlay]):
        parsed = cloud_parser().parse_args([expand(arg, container) for arg in container["args"]])

        assert callable(parsed.run), container["name"]


def test_every_edge_variable_is_an_agent_option() -> None:
    flags = {setting.env_name("") for setting in EDGE_SETTINGS}
    for path in EDGE_FILES:
        names = set(re.findall(rf"\b{EDGE_PREFIX}(\w+)", path.read_text()))

        assert names and names <= flags | EDGE_ENV_ONLY, (path.name, names - flags - EDGE_ENV_ONLY)
