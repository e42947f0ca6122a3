from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetBundleReleaseRequest(_message.Message):
    __slots__ = ("device_id", "cohort")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    cohort: str
    def __init__(self, device_id: _Optional[str] = ..., cohort: _Optional[str] = ...) -> None: ...

class GetBundleReleaseResponse(_message.Message):
    __slots__ = ("release",)
    RELEASE_FIELD_NUMBER: _ClassVar[int]
    release: BundleRelease
    def __init__(self, release: _Optional[_Union[BundleRelease, _Mapping]] = ...) -> None: ...

class BundleFile(_message.Message):
    __slots__ = ("name", "size", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    size: int
    sha256: str
    def __init__(self, name: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class BundleRelease(_message.Message):
    __slots__ = ("cohort", "bundle_version", "model_id", "files", "issued_at_us", "signature", "key_id")
    COHORT_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_US_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    cohort: str
    bundle_version: str
    model_id: str
    files: _containers.RepeatedCompositeFieldContainer[BundleFile]
    issued_at_us: int
    signature: bytes
    key_id: str
    def __init__(self, cohort: _Optional[str] = ..., bundle_version: _Optional[str] = ..., model_id: _Optional[str] = ..., files: _Optional[_Iterable[_Union[BundleFile, _Mapping]]] = ..., issued_at_us: _Optional[int] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...

class ReadBundleFileRequest(_message.Message):
    __slots__ = ("device_id", "cohort", "bundle_version", "name", "offset", "max_chunk_bytes")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    cohort: str
    bundle_version: str
    name: str
    offset: int
    max_chunk_bytes: int
    def __init__(self, device_id: _Optional[str] = ..., cohort: _Optional[str] = ..., bundle_version: _Optional[str] = ..., name: _Optional[str] = ..., offset: _Optional[int] = ..., max_chunk_bytes: _Optional[int] = ...) -> None: ...

class ReadBundleFileResponse(_message.Message):
    __slots__ = ("offset", "data")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...
