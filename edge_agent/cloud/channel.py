"""Opening the gRPC channel to the cloud (TLS and client certificates when configured) and the
metadata that carries the device's credential. Nothing is opened at import."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from confroute.contract.metadata import AUTHORIZATION_KEY, PROBE_VERSION_KEY
from confroute.errors import InvalidInput
from edge_agent.cloud.config import CloudConfig

logger = logging.getLogger(__name__)

Metadata = tuple[tuple[str, str], ...]


def open_channel(config: CloudConfig) -> grpc.Channel:
    """A channel to ``config.target``; the caller closes it. Unreadable certificate files are InvalidInput."""
    reconnect_ms = int(config.max_reconnect_backoff_s * 1000)
    options: list[tuple[str, int | str]] = [("grpc.max_reconnect_backoff_ms", reconnect_ms)]
    if not config.uses_tls:
        if config.token:
            logger.warning("the device token is sent to %s without TLS", config.target)
        return grpc.insecure_channel(config.target, options=options)
    if config.server_name:
        options.append(("grpc.ssl_target_name_override", config.server_name))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read(config.root_certs, "root_certs"),
        private_key=_read(config.client_key, "client_key"),
        certificate_chain=_read(config.client_cert, "client_cert"),
    )
    return grpc.secure_channel(config.target, credentials, options=options)


def call_metadata(config: CloudConfig) -> Metadata:
    """What every call carries: the device's bearer token, when it has one, and its probe version (which
    the cloud's device directory shows), when known."""
    metadata: tuple[tuple[str, str], ...] = ()
    if config.token:
        metadata += ((AUTHORIZATION_KEY, f"Bearer {config.token}"),)
    if config.probe_version:
        metadata += ((PROBE_VERSION_KEY, config.probe_version),)
    return metadata


def _read(path: Path | None, name: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read cloud {name} {path}: {exc}", field=f"cloud.{name}") from exc
