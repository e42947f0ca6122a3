import datetime

from confroute.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_LOCAL: _ClassVar[Decision]
    DECISION_ESCALATED: _ClassVar[Decision]
    DECISION_VETOED: _ClassVar[Decision]
    DECISION_ESCALATION_UNAVAILABLE: _ClassVar[Decision]

class AnsweredBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWERED_BY_UNSPECIFIED: _ClassVar[AnsweredBy]
    ANSWERED_BY_EDGE: _ClassVar[AnsweredBy]
    ANSWERED_BY_CLOUD: _ClassVar[AnsweredBy]
    ANSWERED_BY_NONE: _ClassVar[AnsweredBy]

class Label(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_UNSPECIFIED: _ClassVar[Label]
    LABEL_CORRECT: _ClassVar[Label]
    LABEL_INCORRECT: _ClassVar[Label]

class LabelSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LABEL_SOURCE_UNSPECIFIED: _ClassVar[LabelSource]
    LABEL_SOURCE_REFERENCE: _ClassVar[LabelSource]
    LABEL_SOURCE_CLOUD_JUDGE: _ClassVar[LabelSource]
    LABEL_SOURCE_USER_FEEDBACK: _ClassVar[LabelSource]
    LABEL_SOURCE_AGREEMENT: _ClassVar[LabelSource]
DECISION_UNSPECIFIED: Decision
DECISION_LOCAL: Decision
DECISION_ESCALATED: Decision
DECISION_VETOED: Decision
DECISION_ESCALATION_UNAVAILABLE: Decision
ANSWERED_BY_UNSPECIFIED: AnsweredBy
ANSWERED_BY_EDGE: AnsweredBy
ANSWERED_BY_CLOUD: AnsweredBy
ANSWERED_BY_NONE: AnsweredBy
LABEL_UNSPECIFIED: Label
LABEL_CORRECT: Label
LABEL_INCORRECT: Label
LABEL_SOURCE_UNSPECIFIED: LabelSource
LABEL_SOURCE_REFERENCE: LabelSource
LABEL_SOURCE_CLOUD_JUDGE: LabelSource
LABEL_SOURCE_USER_FEEDBACK: LabelSource
LABEL_SOURCE_AGREEMENT: LabelSource

class UploadOutcomesRequest(_message.Message):
    __slots__ = ("batch_id", "records")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    records: _containers.RepeatedCompositeFieldContainer[OutcomeRecord]
    def __init__(self, batch_id: _Optional[str] = ..., records: _Optional[_Iterable[_Union[OutcomeRecord, _Mapping]]] = ...) -> None: ...

class UploadOutcomesResponse(_message.Message):
    __slots__ = ("batch_id", "stored", "duplicate_query_ids", "rejected")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_QUERY_IDS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    stored: int
    duplicate_query_ids: _containers.RepeatedScalarFieldContainer[str]
    rejected: _containers.RepeatedCompositeFieldContainer[RejectedOutcome]
    def __init__(self, batch_id: _Optional[str] = ..., stored: _Optional[int] = ..., duplicate_query_ids: _Optional[_Iterable[str]] = ..., rejected: _Optional[_Iterable[_Union[RejectedOutcome, _Mapping]]] = ...) -> None: ...

class UploadLabelsRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: UploadOutcomesRequest
    def __init__(self, batch: _Optional[_Union[UploadOutcomesRequest, _Mapping]] = ...) -> None: ...

class UploadLabelsResponse(_message.Message):
    __slots__ = ("ack",)
    ACK_FIELD_NUMBER: _ClassVar[int]
    ack: UploadOutcomesResponse
    def __init__(self, ack: _Optional[_Union[UploadOutcomesResponse, _Mapping]] = ...) -> None: ...

class RejectedOutcome(_message.Message):
    __slots__ = ("query_id", "field", "reason")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    field: str
    reason: str
    def __init__(self, query_id: _Optional[str] = ..., field: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Latency(_message.Message):
    __slots__ = ("edge_ms", "cloud_ms", "total_ms")
    EDGE_MS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    edge_ms: float
    cloud_ms: float
    total_ms: float
    def __init__(self, edge_ms: _Optional[float] = ..., cloud_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class OutcomeRecord(_message.Message):
    __slots__ = ("query_id", "device_id", "cohort", "edge_model", "cloud_model", "mode", "signals", "decision", "answered_by", "policy_version", "shadow", "propensity", "latency", "label", "label_source", "started_at", "finished_at", "prompt_text", "answer_text", "edge_draft_text")
    class SignalsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    EDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    CLOUD_MODEL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_BY_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    LABEL_SOURCE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TEXT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TEXT_FIELD_NUMBER: _ClassVar[int]
    EDGE_DRAFT_TEXT_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    device_id: str
    cohort: str
    edge_model: _common_pb2.ModelRef
    cloud_model: _common_pb2.ModelRef
    mode: _common_pb2.RoutingMode
    signals: _containers.ScalarMap[str, float]
    decision: Decision
    answered_by: AnsweredBy
    policy_version: str
    shadow: bool
    propensity: float
    latency: Latency
    label: Label
    label_source: LabelSource
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    prompt_text: str
    answer_text: str
    edge_draft_text: str
    def __init__(self, query_id: _Optional[str] = ..., device_id: _Optional[str] = ..., cohort: _Optional[str] = ..., edge_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., cloud_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.RoutingMode, str]] = ..., signals: _Optional[_Mapping[str, float]] = ..., decision: _Optional[_Union[Decision, str]] = ..., answered_by: _Optional[_Union[AnsweredBy, str]] = ..., policy_version: _Optional[str] = ..., shadow: _Optional[bool] = ..., propensity: _Optional[float] = ..., latency: _Optional[_Union[Latency, _Mapping]] = ..., label: _Optional[_Union[Label, str]] = ..., label_source: _Optional[_Union[LabelSource, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prompt_text: _Optional[str] = ..., answer_text: _Optional[str] = ..., edge_draft_text: _Optional[str] = ...) -> None: ...
