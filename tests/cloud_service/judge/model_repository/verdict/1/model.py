"""A test judge model: answers every request with one fixed single-grading verdict.

It speaks the tensor interface of the echo model (decoupled, ``text_output``), so the cloud service's
Triton client talks to it unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub provides it

VERDICT = "The assistant's answer agrees with the reference answer and is correct. Rating: [[9]]"
_FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


class TritonPythonModel:
    """Triton's entry point for a python-backend model."""

    def execute(self, requests: list[Any]) -> None:
        for request in requests:
            output = pb_utils.Tensor("text_output", np.array([VERDICT.encode("utf-8")], dtype=np.object_))
            request.get_response_sender().send(pb_utils.InferenceResponse(output_tensors=[output]), flags=_FINAL)
