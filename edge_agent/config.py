"""The edge agent's one frozen configuration, built in ``main()`` from flags and ``CONFROUTE_EDGE_*``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from confroute.paths import cache_dir, default_bundle_dir
from edge_agent.cloud import CloudConfig

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
    tegrastats_interval_ms: int = 0  # Jetson: export tegrastats power/thermal/GPU load on /metrics; 0: off

    @property
    def queue_path(self) -> Path:
        return self.state_dir / "outbox.db"

    @property
    def policy_path(self) -> Path:
        return self.state_dir / "policy.json"


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """Flags with ``CONFROUTE_EDGE_<NAME>`` environment defaults (the flag wins)."""
    def opt(name: str, default: str | None) -> str | None:
        return env.get(ENV + name.upper().replace("-", "_"), default)

    parser.add_argument("--bundle", type=Path, default=opt("bundle", None), help="model bundle folder")
    parser.add_argument("--device", default=opt("device", "cpu"), help="cpu, cuda or tensorrt")
    parser.add_argument("--threads", type=int, default=int(opt("threads", "2") or 2))
    parser.add_argument("--device-id", default=opt("device-id", socket.gethostname()))
    parser.add_argument("--cohort", default=opt("cohort", "default"))
    parser.add_argument("--state-dir", type=Path, default=opt("state-dir", None),
                        help="outbox and last good policy (default: <cache>/edge)")
    parser.add_argument("--cloud", default=opt("cloud", None), help="cloud service host:port (omit: offline)")
    parser.add_argument("--cloud-deadline", type=float, default=float(opt("cloud-deadline", "10") or 10))
    parser.add_argument("--tls", action="store_true", default=opt("tls", "") in ("1", "true"))
    parser.add_argument("--root-certs", type=Path, default=opt("root-certs", None))
    parser.add_argument("--client-cert", type=Path, default=opt("client-cert", None))
    parser.add_argument("--client-key", type=Path, default=opt("client-key", None))
    parser.add_argument("--privacy-pattern", action="append", default=None,
                        help="regular expression; a matching query never leaves the device (repeatable)")
    parser.add_argument("--never-escalate", action="store_true", default=opt("never-escalate", "") in ("1", "true"))
    parser.add_argument("--host", default=opt("host", "127.0.0.1"), help="HTTP API address")
    parser.add_argument("--port", type=int, default=int(opt("port", "8080") or 8080), help="HTTP API port (0: free)")
    parser.add_argument("--log-format", choices=["text", "json"], default=opt("log-format", "text"))
    parser.add_argument("--cors-origin", action="append", default=None,
                        help="a web origin (https://app.example, or * for any) whose pages may call the API "
                             f"from a browser (repeatable; env {ENV}CORS_ORIGINS, comma-separated); omit: none")
    parser.add_argument("--no-huge-pages", dest="huge_pages", action="store_false",
                        default=opt("huge-pages", "1") not in ("0", "false", "no", "off"),
                        help="serve: keep glibc's default malloc (huge pages for the weights made decoding 0-5%% "
                             f"faster in bench.edge_generation; env {ENV}HUGE_PAGES=0)")
    parser.add_argument("--tegrastats-interval-ms", type=int, default=int(opt("tegrastats-interval-ms", "0") or 0),
                        help="Jetson: run tegrastats at this interval and export power, temperatures and GPU load "
                             f"on /metrics (env {ENV}TEGRASTATS_INTERVAL_MS); 0: off")
    parser.add_argument("--policy-key", type=Path, action="append", default=None,
                        help="trusted policy signing key (*.pub) or folder of them (repeatable; env "
                             f"{ENV}POLICY_KEYS, separated by '{os.pathsep}'); omit: accept unsigned policies")


def config_from(args: argparse.Namespace, env: Mapping[str, str]) -> AgentConfig:
    cache = cache_dir(env)
    cloud = None
    if args.cloud:
        cloud = CloudConfig(target=args.cloud, deadline_s=args.cloud_deadline, tls=args.tls,
                            root_certs=args.root_certs, client_cert=args.client_cert, client_key=args.client_key,
                            token=env.get(ENV + "TOKEN", ""))
    patterns: Sequence[str] = args.privacy_pattern or [p for p in env.get(ENV + "PRIVACY_PATTERNS", "").split("\n")
                                                       if p]
    return AgentConfig(
        bundle=Path(args.bundle) if args.bundle else default_bundle_dir(cache, quantized=False),
        device=args.device, threads=args.threads, device_id=args.device_id, cohort=args.cohort,
        state_dir=Path(args.state_dir) if args.state_dir else cache / "edge", cloud=cloud,
        privacy_patterns=tuple(patterns), never_escalate=args.never_escalate, http_host=args.host,
        http_port=args.port, log_format=args.log_format, huge_pages=args.huge_pages,
        tegrastats_interval_ms=args.tegrastats_interval_ms,
        policy_keys=tuple(args.policy_key or [Path(p) for p in env.get(ENV + "POLICY_KEYS", "").split(os.pathsep)
                                              if p]),
        cors_origins=tuple(args.cors_origin or [o.strip() for o in env.get(ENV + "CORS_ORIGINS", "").split(",")
                                                if o.strip()]))
