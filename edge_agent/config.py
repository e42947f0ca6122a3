"""The edge agent's one frozen configuration, built in ``main()`` from flags and ``CONFROUTE_EDGE_*``.

The settings are read by :mod:`confroute.settings`, the cloud service's builder too: a flag wins over its
variable, the variable over the default, and a boolean reads the same spellings on both sides.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from confroute.logs import LOG_FORMATS
from confroute.paths import cache_dir, default_bundle_dir
from confroute.settings import Setting, add_flags, resolve, split_address
from edge_agent.cloud import CloudConfig
from edge_agent.identity import read_secret, stable_device_id

ENV = "CONFROUTE_EDGE_"


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """Everything the agent process needs; ``cloud`` None runs offline (every escalation falls back)."""

    bundle: Path
    device: str
    threads: int
    device_id: str
    cohort: str
    state_dir: Path
    cloud: CloudConfig | None
    privacy_patterns: tuple[str, ...]
    never_escalate: bool
    http_host: str
    http_port: int
    log_format: str
    # Public keys (``*.pub`` files or folders of them) that policies must be signed by; empty: unsigned
    # policies are accepted (development only; the agent logs a warning).
    policy_keys: tuple[Path, ...] = ()
    cors_origins: tuple[str, ...] = ()  # web origins allowed to call the HTTP API from a browser
    huge_pages: bool = True  # `serve` re-executes itself with huge-page malloc (see edge_agent.huge_pages)
    # ``Authorization: Bearer <key>`` required on the HTTP API (but /health) when set; from
    # CONFROUTE_EDGE_API_KEY or --api-key-file (0600), never a flag.
    api_key: str = dataclasses.field(default="", repr=False)
    tegrastats_interval_ms: int = 0  # Jetson: export tegrastats power/thermal/GPU load on /metrics; 0: off
    batch: int = 4  # answers decoded together (continuous batching); 1: one at a time

    @property
    def queue_path(self) -> Path:
        return self.state_dir / "outbox.db"

    @property
    def policy_path(self) -> Path:
        return self.state_dir / "policy.json"


SETTINGS = (
    Setting("bundle", "path", help="model bundle folder (default: the cached default bundle)"),
    Setting("device", default="cpu", help="execution provider: cpu, cuda or tensorrt"),
    Setting("threads", "int", 2, "CPU threads of the model runtime"),
    Setting("batch", "int", 4, "answers decoded together (continuous batching); 1: one at a time"),
    Setting("device_id", help="this device's id (default: from /etc/machine-id, else a UUID kept in the state folder)"),
    Setting("cohort", default="default", help="the cohort whose routing policy this device follows"),
    Setting("state_dir", "path", help="outbox and last good policy (default: <cache>/edge)"),
    Setting("cloud", help="cloud service host:port (omit: offline, every escalation answered locally)"),
    Setting("cloud_deadline", "float", 10.0, "seconds one escalation may take, retries included"),
    Setting("tls", "bool", False, "TLS to the cloud (on as well when a certificate file is given)"),
    Setting("root_certs", "path", help="PEM roots that the cloud's certificate must chain to (default: the system's)"),
    Setting("client_cert", "path", help="PEM client certificate for mTLS (with --client-key)"),
    Setting("client_key", "path", help="PEM key of --client-cert"),
    Setting("token", default="", flag=None,
            help="the device's credential, sent as a bearer token (no flag: it would show in the process list)"),
    Setting("token_file", "path", help="the device's bearer token, a file of mode 0600 (wins over the variable)"),
    Setting("api_key", default="", flag=None, help="require this key (Authorization: Bearer) on the HTTP API"),
    Setting("api_key_file", "path", help="the HTTP API key, a file of mode 0600 (wins over the variable)"),
    Setting("privacy_patterns", default=(), flag="--privacy-pattern", separator="\n",
            help="regular expression; a matching query never leaves the device (variable: one per line)"),
    Setting("never_escalate", "bool", False, "answer everything on the device"),
    Setting("listen", default="127.0.0.1:8080", help="the HTTP API's address, host:port (port 0: a free one)"),
    Setting("log_format", default="text", choices=LOG_FORMATS, help="text, or json: one JSON object per line"),
    Setting("cors_origins", default=(), flag="--cors-origin", separator=",",
            help="a web origin (https://app.example, or * for any) whose pages may call the API from a browser "
                 "(variable: comma-separated); none by default"),
    Setting("huge_pages", "bool", True,
            "serve: re-execute with huge-page malloc (made decoding 0-5% faster in bench.edge_generation)"),
    Setting("policy_keys", "path", (), flag="--policy-key", separator=os.pathsep,
            help="trusted policy signing key (*.pub) or folder of them (variable: separated by the path separator, "
                 "':' on Linux); none: unsigned policies are accepted"),
    Setting("tegrastats_interval_ms", "int", 0,
            "Jetson: run tegrastats at this interval and export power, temperatures and GPU load on /metrics; 0: off"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The agent's flags; each defaults to None so that its ``CONFROUTE_EDGE_*`` variable shows through."""
    parser.allow_abbrev = False  # else ``--token VALUE`` (no such flag: secrets stay off argv) reads as --token-file
    add_flags(parser, SETTINGS, ENV)


def config_from(args: argparse.Namespace, env: Mapping[str, str]) -> AgentConfig:
    """The config from parsed flags, then ``CONFROUTE_EDGE_*`` variables, then the defaults."""
    values = resolve(SETTINGS, args, env, ENV)
    http_host, http_port = split_address(values["listen"], "listen")
    cache = cache_dir(env)
    state_dir = values["state_dir"] or cache / "edge"
    return AgentConfig(
        bundle=values["bundle"] or default_bundle_dir(cache, quantized=False),
        device=values["device"], threads=values["threads"], batch=values["batch"],
        device_id=values["device_id"] or stable_device_id(state_dir),
        cohort=values["cohort"], state_dir=state_dir, cloud=_cloud(values), api_key=_secret(values, "api_key"),
        privacy_patterns=values["privacy_patterns"], never_escalate=values["never_escalate"],
        http_host=http_host, http_port=http_port, log_format=values["log_format"],
        huge_pages=values["huge_pages"], policy_keys=values["policy_keys"], cors_origins=values["cors_origins"],
        tegrastats_interval_ms=values["tegrastats_interval_ms"])


def _secret(values: Mapping[str, Any], name: str) -> str:
    """A credential from its 0600 file (``<name>_file``) or else its variable."""
    path = values[name + "_file"]
    return read_secret(path, name + "_file") if path else str(values[name])


def _cloud(values: Mapping[str, Any]) -> CloudConfig | None:
    if not values["cloud"]:
        return None
    return CloudConfig(target=values["cloud"], deadline_s=values["cloud_deadline"], tls=values["tls"],
                       root_certs=values["root_certs"], client_cert=values["client_cert"],
                       client_key=values["client_key"], token=_secret(values, "token"))
