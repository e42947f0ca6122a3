"""The floor under the service's CPU per escalation: a bare grpc.aio proxy to the same Triton.

``python -m bench.cloudbench.bare_proxy LISTEN TRITON_URL PROMPT PARAMETERS`` serves one unary method,
``/bench.BareProxy/Call``, on uvloop (as the service runs). Each call sends one pre-encoded request for
the echo model over a single shared ``ModelStreamInfer`` stream, as the service's Triton backend does,
and answers with the model's text: no request parsing, validation, metrics, outcome log or error
mapping. Its CPU time per call is what any Python gRPC service in front of Triton pays before doing
anything of its own; bench.cloud_service reports it next to the service's.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from typing import Any

import grpc

from cloud_service import event_loop
from cloud_service.backends.wire import STREAM_METHOD, TextCodec, decode_stream_response, is_final, text_of, with_id

SERVICE, CALL = "bench.BareProxy", "Call"
METHOD = f"/{SERVICE}/{CALL}"


async def serve(listen: str, triton_url: str, prompt: str, parameters: bytes) -> None:
    channel = grpc.aio.insecure_channel(triton_url)
    request = TextCodec("echo", "").encode(prompt, stream=False, sampling_parameters=parameters)
    stream = channel.stream_stream(STREAM_METHOD, response_deserializer=decode_stream_response)()
    waiting: dict[str, asyncio.Future[bytes]] = {}
    outbox: asyncio.Queue[bytes] = asyncio.Queue()
    ids = itertools.count()

    async def write() -> None:
        while True:
            await stream.write(await outbox.get())

    async def read() -> None:
        while (message := await stream.read()) is not grpc.aio.EOF:
            response = message.infer_response
            if message.error_message:  # answered at once, not left to the client's deadline
                failed = waiting.pop(response.id, None)
                if failed is None:
                    print(f"bare proxy: Triton error for an unknown request: {message.error_message}", file=sys.stderr)
                else:
                    failed.set_exception(RuntimeError(f"Triton: {message.error_message}"))
            elif is_final(response):
                waiting.pop(response.id).set_result(text_of(response).encode())

    async def call(_request: bytes, _context: Any) -> bytes:
        request_id = format(next(ids), "x")
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        waiting[request_id] = answer
        outbox.put_nowait(with_id(request, request_id))
        return await answer

    tasks = [asyncio.create_task(write()), asyncio.create_task(read())]
    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(call)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {CALL: handler}),))
    server.add_insecure_port(listen)
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        for task in tasks:
            task.cancel()


def main(argv: list[str]) -> int:
    listen, triton_url, prompt, parameters = argv
    event_loop.run(serve(listen, triton_url, prompt, parameters.encode()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
