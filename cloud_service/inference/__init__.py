"""Model serving behind the cloud service: a local ``tritonserver`` and the model repository it serves."""

from cloud_service.inference.tritonserver import (
    BackendEnvironment,
    Endpoints,
    TritonServerConfig,
    TritonServerProcess,
    find_tritonserver,
    probe_backend_environment,
)

__all__ = [
    "BackendEnvironment",
    "Endpoints",
    "TritonServerConfig",
    "TritonServerProcess",
    "find_tritonserver",
    "probe_backend_environment",
]
