import datetime

from confroute.v1 import fleet_pb2 as _fleet_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutKey(_message.Message):
    __slots__ = ("edge_model_version", "cohort")
    EDGE_MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    edge_model_version: str
    cohort: str
    def __init__(self, edge_model_version: _Optional[str] = ..., cohort: _Optional[str] = ...) -> None: ...

class RolloutState(_message.Message):
    __slots__ = ("control", "canary", "canary_share", "pinned", "base", "shift", "seq")
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    CANARY_FIELD_NUMBER: _ClassVar[int]
    CANARY_SHARE_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    control: str
    canary: str
    canary_share: float
    pinned: bool
    base: str
    shift: float
    seq: int
    def __init__(self, control: _Optional[str] = ..., canary: _Optional[str] = ..., canary_share: _Optional[float] = ..., pinned: _Optional[bool] = ..., base: _Optional[str] = ..., shift: _Optional[float] = ..., seq: _Optional[int] = ...) -> None: ...

class GetRolloutRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: RolloutKey
    def __init__(self, key: _Optional[_Union[RolloutKey, _Mapping]] = ...) -> None: ...

class GetRolloutResponse(_message.Message):
    __slots__ = ("state", "policies")
    STATE_FIELD_NUMBER: _ClassVar[int]
    POLICIES_FIELD_NUMBER: _ClassVar[int]
    state: RolloutState
    policies: _containers.RepeatedCompositeFieldContainer[_fleet_pb2.Policy]
    def __init__(self, state: _Optional[_Union[RolloutState, _Mapping]] = ..., policies: _Optional[_Iterable[_Union[_fleet_pb2.Policy, _Mapping]]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("key", "version")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key: RolloutKey
    version: str
    def __init__(self, key: _Optional[_Union[RolloutKey, _Mapping]] = ..., version: _Optional[str] = ...) -> None: ...

class GetVersionResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: _fleet_pb2.Policy
    def __init__(self, policy: _Optional[_Union[_fleet_pb2.Policy, _Mapping]] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("key", "count")
    KEY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    key: RolloutKey
    count: int
    def __init__(self, key: _Optional[_Union[RolloutKey, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("state", "action", "reason", "at")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    state: RolloutState
    action: str
    reason: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[RolloutState, _Mapping]] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("policy", "reason")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    policy: _fleet_pb2.Policy
    reason: str
    def __init__(self, policy: _Optional[_Union[_fleet_pb2.Policy, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class SetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: _fleet_pb2.Policy
    def __init__(self, policy: _Optional[_Union[_fleet_pb2.Policy, _Mapping]] = ...) -> None: ...

class PromoteRequest(_message.Message):
    __slots__ = ("key", "reason")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key: RolloutKey
    reason: str
    def __init__(self, key: _Optional[_Union[RolloutKey, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("key", "reason")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key: RolloutKey
    reason: str
    def __init__(self, key: _Optional[_Union[RolloutKey, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class UnpinRequest(_message.Message):
    __slots__ = ("key", "reason")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key: RolloutKey
    reason: str
    def __init__(self, key: _Optional[_Union[RolloutKey, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class PinRequest(_message.Message):
    __slots__ = ("key", "version", "reason")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    key: RolloutKey
    version: str
    reason: str
    def __init__(self, key: _Optional[_Union[RolloutKey, _Mapping]] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PromoteResponse(_message.Message):
    __slots__ = ("control",)
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    control: str
    def __init__(self, control: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("control",)
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    control: str
    def __init__(self, control: _Optional[str] = ...) -> None: ...

class PinResponse(_message.Message):
    __slots__ = ("control",)
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    control: str
    def __init__(self, control: _Optional[str] = ...) -> None: ...

class UnpinResponse(_message.Message):
    __slots__ = ("control",)
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    control: str
    def __init__(self, control: _Optional[str] = ...) -> None: ...
