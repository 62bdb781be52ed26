"""Real messages validate against the topic contracts in docs/schemas/ (docs/topics.md).

The trading and gateway flows run on a simulated stream (the real `build_flow()`s over
lists, see conftest); every event they emit is routed and encoded exactly as the Kafka
sink would, then checked against the JSON Schema of its topic.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from connectors import topic
from connectors.codec import encode
from connectors.feeds.publisher import outbound
from connectors.kafka.record import KafkaRecord
from dataflows.flows.routing import ROUTES, to_outbound
from dataflows.flows.trading import decode_ticks
from risk.domain import Order

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
# Topics a clean simulated run must exercise (the others carry rarer events: drift,
# alerts, audit, model commands, checkpoints, and positions, which need fills fed back;
# their types are covered by `ROUTES` below).
MUST_SEE = {
    topic.ORDERS,
    topic.ORDER_EVENTS,
    topic.FILLS,
    topic.DECISIONS,
    topic.SIGNALS,
    topic.PREDICTIONS,
    topic.FEATURES,
    topic.BARS,
    topic.PNL,
    topic.DLQ,
}


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def validator(name: str) -> jsonschema.Draft202012Validator:
    found = schema(name)
    jsonschema.Draft202012Validator.check_schema(found)
    return jsonschema.Draft202012Validator(found, format_checker=jsonschema.FormatChecker())


def render_module() -> Any:
    spec = importlib.util.spec_from_file_location("schema_render", SCHEMAS / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_schemas_equal_what_render_writes() -> None:
    rendered = render_module().render()
    committed = {path.name: path.read_text() for path in SCHEMAS.glob("*.schema.json")}
    assert committed == rendered, "run: python docs/schemas/render.py"


def test_every_topic_and_routed_type_has_a_schema() -> None:
    render = render_module()
    assert {spec.name for spec in topic.ALL_TOPICS} == {topic.TICKS, *render.TOPIC_TYPES}
    for kind, (name, _key) in ROUTES.items():
        assert kind in render.TOPIC_TYPES[name][1], f"{kind.__name__} on {name}"


@pytest.fixture(scope="module")
def flow_records(
    trading_events: list[object],
    run_gateway: Any,
    tick_records: list[KafkaRecord],
    bad_stream: Any,
    settings: Any,
) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of every event one trading and one gateway run emit, plus the
    dead letters the trading flow's decode step makes of the bad records."""
    orders = [event for event in trading_events if isinstance(event, Order)]
    events = [*trading_events, *run_gateway(tick_records, orders)]
    decode = decode_ticks(frozenset(settings.trading.instruments))
    events += [item for item in decode(bad_stream.records) if not isinstance(item, tuple)]
    return [(name, record.key, record.value) for name, record in to_outbound("")(events)]


def test_flow_messages_validate_against_their_topic_schema(
    flow_records: list[tuple[str, bytes, bytes]],
) -> None:
    validators: dict[str, jsonschema.Draft202012Validator] = {}
    seen: Counter[str] = Counter()
    for name, _key, value in flow_records:
        check = validators.setdefault(name, validator(name))
        errors = [error.message for error in check.iter_errors(json.loads(value))]
        assert not errors, f"{name}: {errors[:3]} in {value[:300]!r}"
        seen[name] += 1
    assert set(seen) >= MUST_SEE, f"not exercised: {MUST_SEE - set(seen)}"


def test_flow_messages_are_keyed_as_documented(
    flow_records: list[tuple[str, bytes, bytes]],
) -> None:
    fields = {
        "account": "account",
        "instrument": "instrument",
        "topic the failed record came from": "topic",
        "alert name": "name",
        "subject": "subject",
    }
    types = render_module().TOPIC_TYPES
    for name, key, value in flow_records:
        documented = types[name][0]
        if documented in fields:
            assert key.decode() == json.loads(value)[fields[documented]], name


def test_feed_ticks_validate_against_the_tick_schema(tick_dicts: list[dict[str, Any]]) -> None:
    check = validator(topic.TICKS)
    for record in tick_dicts[:2000]:
        message = outbound(record, topic.TICKS)
        assert message.key == record["instrument"].encode()
        errors = [error.message for error in check.iter_errors(json.loads(message.value))]
        assert not errors, errors


@pytest.mark.parametrize(
    "change",
    [
        {"price": -1.0},
        {"size": -5.0},
        {"instrument": ""},
        {"seq": "7"},
        {"ts_event": 1.5},
        {"kind": "quote", "bid": None},
        {"kind": "auction"},
    ],
)
def test_tick_schema_rejects_what_the_decoder_dead_letters(
    tick_dicts: list[dict[str, Any]], change: dict[str, Any]
) -> None:
    from connectors.codec import decode_tick
    from risk.domain import DecodeFailure

    bad = {**tick_dicts[0], "ts_init": 1, **change}
    assert list(validator(topic.TICKS).iter_errors(bad))
    assert isinstance(decode_tick(encode(bad)), DecodeFailure)


def test_tick_schema_rejects_non_finite_prices(tick_dicts: list[dict[str, Any]]) -> None:
    bad = {**tick_dicts[0], "ts_init": 1, "price": "NaN"}
    assert list(validator(topic.TICKS).iter_errors(bad))
    assert math.isnan(float(bad["price"]))
