"""Events encode to the same bytes through the routing's field mapping as through orjson's
own dataclass path."""

from __future__ import annotations

import dataclasses
import types
import typing
from decimal import Decimal
from enum import Enum
from typing import Any

import pytest

from connectors.codec import encode
from dataflows.flows.routing import ROUTES, as_mapping


def sample(hint: Any, depth: int = 0) -> Any:
    """A value of type `hint`, not None where the type allows another."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return sample(next(a for a in args if a is not type(None)), depth)
    if origin is typing.Literal:
        return args[0]
    if origin is tuple:
        return (sample(args[0], depth),) if args else ()
    if origin in (list, frozenset, set):
        return [sample(args[0], depth)]
    if origin is dict or hint is dict:
        return {"a": 1.5, "b": -2.0}
    if dataclasses.is_dataclass(hint):
        return build(hint, depth + 1)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return next(iter(hint))
    simple = {str: "x-é", int: 1_700_000_000_000_000_123, float: 0.123456789, bool: True}
    if hint in simple:
        return simple[hint]
    if hint is Decimal:
        return Decimal("12.3400")
    if hint is bytes:
        return b"raw"
    return "x"


def build(kind: type, depth: int = 0) -> Any:
    hints = typing.get_type_hints(kind)
    return kind(**{f.name: sample(hints[f.name], depth) for f in dataclasses.fields(kind)})


@pytest.mark.parametrize("kind", list(ROUTES), ids=lambda kind: kind.__name__)
def test_event_as_mapping_encodes_to_the_same_bytes_as_the_dataclass(kind: type) -> None:
    event = build(kind)
    assert encode(as_mapping(kind)(event)) == encode(event)
