"""Every call carries the probe version current when it starts (a real gRPC server on a loopback port)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from confroute.contract.metadata import PROBE_VERSION_KEY
from edge_agent.cloud.probe_header import with_probe_version

pytestmark = pytest.mark.timeout(30)


class _Echo(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Answers every unary call and every streamed call with the probe version it was sent."""

    def service(self, details: Any) -> Any:
        if details.method.endswith("Stream"):
            return grpc.unary_stream_rpc_method_handler(lambda _req, ctx: iter([_sent(ctx)] * 2))
        return grpc.unary_unary_rpc_method_handler(lambda _req, ctx: _sent(ctx))


def _sent(context: grpc.ServicerContext) -> bytes:
    sent: str = dict(context.invocation_metadata()).get(PROBE_VERSION_KEY, "-")
    return sent.encode()


@pytest.fixture
def target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[_Echo()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_each_call_reads_the_probe_version_when_it_starts(target: str) -> None:
    live = ["untrained"]
    with grpc.insecure_channel(target) as plain:
        channel = with_probe_version(plain, lambda: live[0])
        unary = channel.unary_unary("/t.Echo/Call")
        stream = channel.unary_stream("/t.Echo/CallStream")

        assert unary(b"", metadata=(("authorization", "Bearer x"),)) == b"untrained"
        live[0] = "0123456789ab"  # a probe delivered with a policy
        assert unary(b"") == b"0123456789ab"
        assert list(stream(b"")) == [b"0123456789ab"] * 2
        live[0] = ""
        assert unary(b"", metadata=((PROBE_VERSION_KEY, "stale"),)) == b"-"  # none known: none sent
