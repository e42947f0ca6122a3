"""The domain side of the ``confroute.v1`` gRPC contract: frozen dataclasses with ``to_pb()`` and
``from_pb()``, so protobuf stays at the boundary.

``from_pb`` validates what arrives from the wire and raises ``InvalidInput`` (``InvalidPolicy`` for
policies) whose ``field`` names the offending field, e.g. ``params.top_p`` or ``messages[0].role``.
``to_pb`` trusts the domain object it is called on.
"""

from confroute.contract.answer import (
    EscalationResponse,
    StreamEvent,
    Timings,
    TokenDelta,
    Usage,
    stream_event_from_pb,
    stream_event_to_pb,
)
from confroute.contract.calibration_map import CalibrationMap
from confroute.contract.common import ModelRef
from confroute.contract.enums import (
    AnsweredBy,
    ChatRole,
    Decision,
    FinishReason,
    Label,
    LabelSource,
    RoutingMode,
)
from confroute.contract.escalation import ChatMessage, EscalationRequest, GenerationParams
from confroute.contract.outcome import Latency, OutcomeRecord
from confroute.contract.policy import Policy, PolicyRequest, Thresholds
from confroute.contract.upload import OutcomeAck, OutcomeBatch, RejectedOutcome

__all__ = [
    "AnsweredBy",
    "CalibrationMap",
    "ChatMessage",
    "ChatRole",
    "Decision",
    "EscalationRequest",
    "EscalationResponse",
    "FinishReason",
    "GenerationParams",
    "Label",
    "LabelSource",
    "Latency",
    "ModelRef",
    "OutcomeAck",
    "OutcomeBatch",
    "OutcomeRecord",
    "Policy",
    "PolicyRequest",
    "RejectedOutcome",
    "RoutingMode",
    "StreamEvent",
    "Thresholds",
    "Timings",
    "TokenDelta",
    "Usage",
    "stream_event_from_pb",
    "stream_event_to_pb",
]
