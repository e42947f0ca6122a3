"""The cloud service's gRPC side: thin servicers, the error interceptor, health, and the runner."""

from cloud_service.server.app import CloudServer, Dependencies, build_server
from cloud_service.server.interceptor import ErrorInterceptor
from cloud_service.server.limits import InflightLimit

__all__ = ["CloudServer", "Dependencies", "ErrorInterceptor", "InflightLimit", "build_server"]
