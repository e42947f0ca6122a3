"""Every domain enum member has a wire value and every wire value a domain member, both ways."""

from __future__ import annotations

from typing import Any

import pytest

from confroute.contract import enums
from confroute.contract._checks import EnumCodec
from confroute.errors import InvalidInput

CODECS: list[EnumCodec[Any, Any]] = [
    enums.ROUTING_MODE,
    enums.CHAT_ROLE,
    enums.FINISH_REASON,
    enums.DECISION,
    enums.ANSWERED_BY,
    enums.LABEL,
    enums.LABEL_SOURCE,
]
IDS = [codec.domain.__name__ for codec in CODECS]


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_every_domain_member_round_trips_through_the_wire(codec: EnumCodec[Any, Any]) -> None:
    for member in codec.domain:
        assert codec.from_pb(codec.to_pb(member), "f") is member


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_every_wire_value_has_a_domain_member(codec: EnumCodec[Any, Any]) -> None:
    wire_values = codec.wire.values()
    specified = [v for v in wire_values if v != 0]
    assert len(specified) + (codec.zero is not None) == len(codec.domain.__members__)


@pytest.mark.parametrize("codec", CODECS, ids=IDS)
def test_an_unknown_wire_value_is_rejected_naming_the_field(codec: EnumCodec[Any, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        codec.from_pb(99, "some.field")
    assert caught.value.field == "some.field"


def test_an_unset_value_is_rejected_where_the_enum_has_no_default() -> None:
    with pytest.raises(InvalidInput) as caught:
        enums.ROUTING_MODE.from_pb(0, "mode")
    assert caught.value.field == "mode"


def test_an_unset_label_means_unknown() -> None:
    assert enums.LABEL.from_pb(0, "label") is enums.Label.UNKNOWN
    assert enums.LABEL.to_pb(enums.Label.UNKNOWN) == 0
