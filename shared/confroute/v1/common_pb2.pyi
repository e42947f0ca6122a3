from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RoutingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTING_MODE_UNSPECIFIED: _ClassVar[RoutingMode]
    ROUTING_MODE_PRE: _ClassVar[RoutingMode]
    ROUTING_MODE_POST: _ClassVar[RoutingMode]
    ROUTING_MODE_HYBRID: _ClassVar[RoutingMode]
ROUTING_MODE_UNSPECIFIED: RoutingMode
ROUTING_MODE_PRE: RoutingMode
ROUTING_MODE_POST: RoutingMode
ROUTING_MODE_HYBRID: RoutingMode

class ModelRef(_message.Message):
    __slots__ = ("id", "version")
    ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    id: str
    version: str
    def __init__(self, id: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...
