"""The one exception tree of confroute.

Foreign errors (onnxruntime, tokenizers, pip, grpc, redis, tritonclient) are translated into these at
exactly one boundary per external system, with ``raise ... from exc``.

    ConfrouteError
    ├── InvalidInput                 bad input from a caller (-> INVALID_ARGUMENT / HTTP 400)
    │   ├── PromptTooLong            prompt (+ max new tokens) exceeds the model context
    │   └── InvalidPolicy            a policy that is malformed, out of range or badly signed
    ├── BundleError                  a model bundle cannot be used
    │   ├── BundleNotFound
    │   ├── BundleCorrupt            manifest invalid, file missing, sha256 mismatch
    │   ├── ProbeShapeMismatch       probe weights that do not fit the bundle's probe spec
    │   └── InsufficientDisk         a bundle download refused: the disk has less free space than it needs
    ├── ExportError                  building a bundle failed
    │   ├── SourceNotFound           missing file/folder, unknown hub id
    │   ├── SourceIntegrityError     wrong sha256, corrupt GGUF
    │   ├── UnsupportedArchitecture
    │   └── FetchFailed              the package index / hub could not be reached
    ├── RuntimeFailure               the model runtime failed while running a valid request
    ├── Unavailable                  a dependency (cloud, Triton, Redis) is down (-> UNAVAILABLE)
    ├── DeadlineExceeded             a call ran past its deadline (-> DEADLINE_EXCEEDED)
    ├── Overloaded                   bounded capacity is full (-> RESOURCE_EXHAUSTED)
    │   └── RateLimited              a caller's own rate is spent; ``retry_after_s`` says when to come back
    │       └── CredentialFlood      too many invalid credentials from one peer address
    ├── Unauthenticated              no credential, or one that is unknown, expired or revoked (-> UNAUTHENTICATED)
    └── PermissionDenied             a known caller asked for what its identity does not allow (-> PERMISSION_DENIED)
"""

from __future__ import annotations


class ConfrouteError(Exception):
    """Root of every error confroute raises on purpose."""


class InvalidInput(ConfrouteError):
    """The caller sent something the system cannot accept. ``field`` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PromptTooLong(InvalidInput):
    """The prompt, plus the tokens asked for, does not fit in the model's context."""

    def __init__(self, prompt_tokens: int, max_new_tokens: int, context: int) -> None:
        super().__init__(
            f"prompt has {prompt_tokens} tokens and {max_new_tokens} new tokens were asked for, "
            f"but the model context is {context} tokens; shorten the prompt, lower max_tokens, "
            "or ask for truncation",
            field="messages",
        )
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.context = context


class InvalidPolicy(InvalidInput):
    """A routing policy that must not be applied."""


class BundleError(ConfrouteError):
    """A model bundle cannot be used."""


class BundleNotFound(BundleError):
    """No bundle at the given path."""


class BundleCorrupt(BundleError):
    """The bundle's manifest or files are invalid (missing, malformed, checksum mismatch)."""


class ProbeShapeMismatch(BundleError):
    """Probe weights whose shape does not match the bundle's probe spec."""


class InsufficientDisk(BundleError):
    """A new bundle would not fit: refused before anything is downloaded."""

    def __init__(self, message: str, *, needed_bytes: int, free_bytes: int) -> None:
        super().__init__(message)
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes


class ExportError(ConfrouteError):
    """Building a bundle failed."""


class SourceNotFound(ExportError):
    """The export source (file, folder, package, hub id) does not exist."""


class SourceIntegrityError(ExportError):
    """The export source is corrupt or does not match its pinned checksum."""


class UnsupportedArchitecture(ExportError):
    """The source model's architecture is not one the exporter can build."""


class FetchFailed(ExportError):
    """Downloading the source (package index or model hub) failed."""


class RuntimeFailure(ConfrouteError):
    """The model runtime failed on a valid request."""


class Unavailable(ConfrouteError):
    """A dependency is down or unreachable."""


class DeadlineExceeded(ConfrouteError):
    """A call ran past its deadline."""


class Overloaded(ConfrouteError):
    """Bounded capacity is full; the caller should back off and retry."""


class RateLimited(Overloaded):
    """The caller's own rate limit is spent; it may try again after ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CredentialFlood(RateLimited):
    """A peer address presented too many invalid credentials; refused without looking the next one up."""


class Unauthenticated(ConfrouteError):
    """The caller presented no credential, or one that is unknown, expired, rotated out or revoked."""


class PermissionDenied(ConfrouteError):
    """The caller is known, but its identity does not allow what it asked for."""
