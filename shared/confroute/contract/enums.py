"""The contract's enumerations as ``enum.Enum``, and their codecs to and from the wire."""

from __future__ import annotations

import enum

from confroute.contract._checks import EnumCodec
from confroute.v1 import common_pb2, escalation_pb2, outcomes_pb2


class RoutingMode(enum.Enum):
    """When the edge decides to escalate."""

    PRE = "pre"  # before generation, from the prompt probe
    POST = "post"  # after generation, from sequence confidence
    HYBRID = "hybrid"  # a pre gate whose uncertain band is resolved post


class ChatRole(enum.Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class FinishReason(enum.Enum):
    STOP = "stop"  # end of sequence or a stop string
    LENGTH = "length"  # max_tokens reached


class Decision(enum.Enum):
    """What the router decided for a query."""

    LOCAL = "local"
    ESCALATED = "escalated"
    VETOED = "vetoed"  # escalation wanted, forbidden by a local rule
    ESCALATION_UNAVAILABLE = "escalation_unavailable"  # escalation wanted, cloud unreachable


class AnsweredBy(enum.Enum):
    EDGE = "edge"
    CLOUD = "cloud"
    NONE = "none"  # no answer could be produced


class Label(enum.Enum):
    """Whether the answer the user got was right."""

    UNKNOWN = "unknown"
    CORRECT = "correct"
    INCORRECT = "incorrect"


class LabelSource(enum.Enum):
    NONE = "none"  # no label
    REFERENCE = "reference"
    CLOUD_JUDGE = "cloud_judge"
    USER_FEEDBACK = "user_feedback"
    AGREEMENT = "agreement"  # edge draft and cloud answer agree


ROUTING_MODE = EnumCodec(RoutingMode, common_pb2.RoutingMode, "ROUTING_MODE_")
CHAT_ROLE = EnumCodec(ChatRole, escalation_pb2.ChatRole, "CHAT_ROLE_")
FINISH_REASON = EnumCodec(FinishReason, escalation_pb2.FinishReason, "FINISH_REASON_")
DECISION = EnumCodec(Decision, outcomes_pb2.Decision, "DECISION_")
ANSWERED_BY = EnumCodec(AnsweredBy, outcomes_pb2.AnsweredBy, "ANSWERED_BY_")
LABEL = EnumCodec(Label, outcomes_pb2.Label, "LABEL_", zero=Label.UNKNOWN)
LABEL_SOURCE = EnumCodec(LabelSource, outcomes_pb2.LabelSource, "LABEL_SOURCE_", zero=LabelSource.NONE)
