"""A test model: the echo model's streaming behaviour, one word every ``DELAY_S`` seconds.

Each request is answered from its own thread, so concurrent requests do not queue behind each other
in the single model instance; a request whose client went away stops early.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub provides it

DELAY_S = 0.2
_WORD = re.compile(r"\s*\S+(?:\s+$)?")
_FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


class TritonPythonModel:
    """Triton's entry point for a python-backend model."""

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            threading.Thread(target=_answer, args=(request,), daemon=True).start()


def _answer(request: Any) -> None:
    sender = request.get_response_sender()
    text = pb_utils.get_input_tensor_by_name(request, "text_input").as_numpy().reshape(-1)[0].decode("utf-8")
    words = _WORD.findall(text)[: _max_tokens(request)] or [""]
    for index, word in enumerate(words):
        time.sleep(DELAY_S)
        if sender.is_cancelled():
            sender.send(flags=_FINAL)
            return
        last = index == len(words) - 1
        output = pb_utils.Tensor("text_output", np.array([word.encode("utf-8")], dtype=np.object_))
        sender.send(pb_utils.InferenceResponse(output_tensors=[output]), flags=_FINAL if last else 0)


def _max_tokens(request: Any) -> int | None:
    tensor = pb_utils.get_input_tensor_by_name(request, "sampling_parameters")
    if tensor is None:
        return None
    return json.loads(tensor.as_numpy().reshape(-1)[0].decode("utf-8")).get("max_tokens")
