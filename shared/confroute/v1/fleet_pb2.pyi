import datetime

from confroute.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetPolicyRequest(_message.Message):
    __slots__ = ("edge_model", "cohort", "device_id")
    EDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    edge_model: _common_pb2.ModelRef
    cohort: str
    device_id: str
    def __init__(self, edge_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., cohort: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class WatchPolicyRequest(_message.Message):
    __slots__ = ("edge_model", "cohort", "device_id", "known_policy_version")
    EDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    KNOWN_POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    edge_model: _common_pb2.ModelRef
    cohort: str
    device_id: str
    known_policy_version: str
    def __init__(self, edge_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., cohort: _Optional[str] = ..., device_id: _Optional[str] = ..., known_policy_version: _Optional[str] = ...) -> None: ...

class WatchPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class Thresholds(_message.Message):
    __slots__ = ("pre", "post", "hybrid_low", "hybrid_high")
    PRE_FIELD_NUMBER: _ClassVar[int]
    POST_FIELD_NUMBER: _ClassVar[int]
    HYBRID_LOW_FIELD_NUMBER: _ClassVar[int]
    HYBRID_HIGH_FIELD_NUMBER: _ClassVar[int]
    pre: float
    post: float
    hybrid_low: float
    hybrid_high: float
    def __init__(self, pre: _Optional[float] = ..., post: _Optional[float] = ..., hybrid_low: _Optional[float] = ..., hybrid_high: _Optional[float] = ...) -> None: ...

class CalibrationMap(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: _containers.RepeatedScalarFieldContainer[float]
    y: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, x: _Optional[_Iterable[float]] = ..., y: _Optional[_Iterable[float]] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("policy_version", "edge_model", "cohort", "mode", "thresholds", "calibration", "shadow_rate", "issued_at", "signature", "key_id", "probe_version", "probe")
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    EDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_FIELD_NUMBER: _ClassVar[int]
    SHADOW_RATE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PROBE_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROBE_FIELD_NUMBER: _ClassVar[int]
    policy_version: str
    edge_model: _common_pb2.ModelRef
    cohort: str
    mode: _common_pb2.RoutingMode
    thresholds: Thresholds
    calibration: CalibrationMap
    shadow_rate: float
    issued_at: _timestamp_pb2.Timestamp
    signature: bytes
    key_id: str
    probe_version: str
    probe: RouterProbe
    def __init__(self, policy_version: _Optional[str] = ..., edge_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., cohort: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.RoutingMode, str]] = ..., thresholds: _Optional[_Union[Thresholds, _Mapping]] = ..., calibration: _Optional[_Union[CalibrationMap, _Mapping]] = ..., shadow_rate: _Optional[float] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ..., probe_version: _Optional[str] = ..., probe: _Optional[_Union[RouterProbe, _Mapping]] = ...) -> None: ...

class RouterProbe(_message.Message):
    __slots__ = ("version", "edge_model_version", "cohort", "weight_f32le", "bias", "first_layer", "last_layer", "provenance_json", "signature", "key_id")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EDGE_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_F32LE_FIELD_NUMBER: _ClassVar[int]
    BIAS_FIELD_NUMBER: _ClassVar[int]
    FIRST_LAYER_FIELD_NUMBER: _ClassVar[int]
    LAST_LAYER_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_JSON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    version: str
    edge_model_version: str
    cohort: str
    weight_f32le: bytes
    bias: float
    first_layer: int
    last_layer: int
    provenance_json: str
    signature: bytes
    key_id: str
    def __init__(self, version: _Optional[str] = ..., edge_model_version: _Optional[str] = ..., cohort: _Optional[str] = ..., weight_f32le: _Optional[bytes] = ..., bias: _Optional[float] = ..., first_layer: _Optional[int] = ..., last_layer: _Optional[int] = ..., provenance_json: _Optional[str] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...
