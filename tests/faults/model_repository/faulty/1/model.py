"""A Triton python-backend model that answers as the echo model does, slowed or failing on demand.

The fault suite serves it as ``faulty``; its ``config.pbtxt`` (written by the suite) names two files in its
parameters: ``echo_model``, the echo model's ``model.py`` (whose answers it gives), and ``control``, a JSON
file the suite writes while the server runs, read for every batch of requests:

- ``{"delay_s": 3.0}``: every answer comes that much later (each request waits in its own thread, as a slow
  LLM serves concurrent requests, so a request that arrives after the delay is lifted is answered at once);
- ``{"error": "text"}``: every request is answered with that Triton error (INTERNAL);
- no file, or ``{}``: the echo model's answer at once.

It runs inside Triton's python backend stub: only the stdlib and the stub's ``triton_python_backend_utils``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils  # type: ignore[import-not-found]  # the stub provides it


class TritonPythonModel:
    """Triton's entry point for a python-backend model."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self._control = Path(parameters["control"])
        spec = importlib.util.spec_from_file_location("faults_echo_model", parameters["echo_model"])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self._echo = module.TritonPythonModel()
        self._echo.initialize(args)

    def execute(self, requests: list[Any]) -> None:
        fault = self._fault()
        for request in requests:
            if "error" in fault:
                error = pb_utils.TritonError(str(fault["error"]), pb_utils.TritonError.INTERNAL)
                request.get_response_sender().send(pb_utils.InferenceResponse(error=error),
                                                   flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            elif float(fault.get("delay_s", 0.0)) > 0.0:
                threading.Thread(target=self._later, args=(request, float(fault["delay_s"])), daemon=True).start()
            else:
                self._echo.execute([request])

    def finalize(self) -> None:
        """Nothing to release (delayed answers are daemon threads)."""

    def _later(self, request: Any, delay_s: float) -> None:
        time.sleep(delay_s)
        with contextlib.suppress(Exception):  # the caller gave up (cancelled): nobody waits for this answer
            self._echo.execute([request])

    def _fault(self) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self._control.read_text())
        except (OSError, ValueError):
            return {}
        return loaded
