"""The gRPC metadata keys both sides read or write (names are lower case, as gRPC sends them)."""

AUTHORIZATION_KEY = "authorization"  # "Bearer <token>": a device's or an operator's bearer credential
RETRY_AFTER_KEY = "retry-after-ms"  # trailing metadata of a RESOURCE_EXHAUSTED refusal: when to try again
PROBE_VERSION_KEY = "confroute-probe-version"  # the device's probe weights (Manifest.probe_version)
