"""Features and predictions leave the trading flow as columnar records (one per instrument
per batch), and the persist flow stores exactly the rows their single records gave.

The reference is what the code did before: one record per event (`encode(event)`), each
decoded by `record_decoder` into one row. The trading steps' real output is routed both
ways and the rows compared, table by table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson
import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client
from conftest import ListIO, as_records

from connectors import topic
from connectors.codec import encode, event_rows, record_decoder, record_rows_decoder
from connectors.kafka.record import KafkaRecord
from dataflows.flows import persist
from dataflows.flows.routing import MAX_BATCH_ROWS, to_outbound
from dataflows.settings import Secret, Settings
from online_models.instrument import explode
from risk.domain import DecodeFailure, FeatureVector, Prediction

COLUMNAR = (topic.FEATURES, topic.PREDICTIONS)


def single_rows(events: Sequence[object]) -> dict[str, list[dict[str, Any]]]:
    """Rows by topic as one record per event gave them (the code before batching)."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in COLUMNAR}
    for event in events:
        name = topic.FEATURES if isinstance(event, FeatureVector) else topic.PREDICTIONS
        if isinstance(event, FeatureVector | Prediction):
            row = record_decoder(name)(encode(event))
            assert not isinstance(row, DecodeFailure)
            rows[name].append(row)
    return rows


def routed_records(events: Sequence[object], batch: int) -> list[tuple[str, bytes]]:
    """(topic, value) of the columnar records, routing `events` in batches of `batch`."""
    route = to_outbound("")
    records = []
    for start in range(0, len(events), batch):
        records += [
            (name, record.value)
            for name, record in route(list(events[start : start + batch]))
            if name in COLUMNAR
        ]
    return records


def by_instrument(rows: list[dict[str, Any]]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for row in rows:
        out.setdefault(row["instrument"], []).append(orjson.dumps(row))
    return out


@pytest.mark.parametrize("batch", [1, 333, 5000, 10**9])
def test_columnar_records_explode_into_the_single_records_rows(
    trading_events: list[object], batch: int
) -> None:
    # The flow emits columnar records itself; as rows, they are the single records.
    events = explode(trading_events)
    expected = single_rows(events)
    got: dict[str, list[dict[str, Any]]] = {name: [] for name in COLUMNAR}
    records = routed_records(events, batch)
    for name, value in records:
        rows = record_rows_decoder(name)(value)
        assert not isinstance(rows, DecodeFailure), rows
        got[name] += rows

    for name in COLUMNAR:
        assert expected[name], name
        # The same rows, each instrument's in the same order (instruments interleave
        # by batch, which no table's content depends on).
        assert by_instrument(got[name]) == by_instrument(expected[name]), name
    total = sum(len(rows) for rows in expected.values())
    if batch > 1:
        assert len(records) < total / 10  # far fewer records than rows


def test_columnar_records_carry_their_latest_event_time_and_stay_under_the_row_limit(
    trading_events: list[object],
) -> None:
    for name, value in routed_records(explode(trading_events), 10**9):
        record = orjson.loads(value)
        rows = event_rows(name, record)
        assert 0 < len(rows) <= MAX_BATCH_ROWS
        assert record["ts_event"] == max(row["ts_event"] for row in rows)
        assert record["ts_init"] == max(row["ts_init"] for row in rows)
        assert {row["instrument"] for row in rows} == {record["instrument"]}


def test_feature_names_changing_within_a_batch_start_a_new_record() -> None:
    vectors = [
        FeatureVector(tick_id=f"t{i}", instrument="X", values=values, ts_event=i, ts_init=i)
        for i, values in enumerate([{"a": 1.0}, {"a": 2.0}, {"a": 3.0, "b": 0.5}, {"a": 4.0}])
    ]

    records = to_outbound("")(vectors)

    names = [orjson.loads(record.value)["names"] for _, record in records]
    assert names == [["a"], ["a", "b"], ["a"]]
    rows = [
        row
        for _, record in records
        for row in event_rows(topic.FEATURES, orjson.loads(record.value))
    ]
    assert [row["values"] for row in rows] == [vector.values for vector in vectors]


@pytest.mark.parametrize(
    "change",
    [
        {"tick_ids": ["a"]},  # columns of different lengths
        {"values": [[1.0], [2.0, 3.0]]},  # a row of the wrong width
        {"values": [[1.0], ["NaN"]]},
        {"ts_events": [1, -1]},
        {"names": "a"},
        {"instrument": 5},
        {"ts_inits": None},
    ],
)
def test_a_malformed_columnar_record_is_one_dead_letter(change: dict[str, Any]) -> None:
    good = {
        "instrument": "X",
        "names": ["a"],
        "tick_ids": ["t1", "t2"],
        "values": [[1.0], [2.0]],
        "ts_events": [1, 2],
        "ts_inits": [1, 2],
        "ts_event": 2,
        "ts_init": 2,
    }
    assert len(record_rows_decoder(topic.FEATURES)(orjson.dumps(good))) == 2  # type: ignore[arg-type]

    failure = record_rows_decoder(topic.FEATURES)(orjson.dumps(good | change))

    assert isinstance(failure, DecodeFailure)


def test_persist_stores_columnar_records_as_the_single_records_rows(
    settings: Settings, clickhouse_url: str, clickhouse: Client, trading_events: list[object]
) -> None:
    prefix = "columnar."
    events = [
        event for event in explode(trading_events) if isinstance(event, FeatureVector | Prediction)
    ]
    inputs: dict[str, Sequence[KafkaRecord]] = {
        name: as_records(
            [value for routed, value in routed_records(events, 500) if routed == name],
            prefix + name,
        )
        for name in COLUMNAR
    }
    kafka = replace(settings.kafka, topic_prefix=prefix)
    store = replace(settings.clickhouse, url=Secret(clickhouse_url), flush_interval_s=0.0)
    out: list[object] = []

    run_main(
        persist.build_flow(replace(settings, kafka=kafka, clickhouse=store), ListIO(inputs, out, 7))
    )

    assert out == []  # no dead letters
    expected = single_rows(events)
    # Other tests store rows of the same stream in the session's store (identical rows,
    # merged by FINAL): compare the rows of these ticks.
    feature_ids = {row["tick_id"] for row in expected[topic.FEATURES]}
    stored = {
        (t, i, e): dict(v)
        for t, i, v, e in clickhouse.query(
            "SELECT tick_id, instrument, values, toUnixTimestamp64Nano(ts_event)"
            " FROM features FINAL"
        ).result_rows
        if t in feature_ids
    }
    assert stored == {
        (row["tick_id"], row["instrument"], row["ts_event"]): row["values"]
        for row in expected[topic.FEATURES]
    }
    stored_predictions = {
        (t, m, label)
        for t, m, label in clickhouse.query(
            "SELECT tick_id, model, label FROM predictions FINAL"
        ).result_rows
        if t in feature_ids
    }
    latest: dict[tuple[str, str], int | None] = {}
    for row in expected[topic.PREDICTIONS]:  # version 1 (labelled) replaces version 0
        key = (row["tick_id"], row["model"])
        if row["version"] >= (0 if key not in latest else 1):
            latest[key] = row["label"]
    assert stored_predictions == {
        (t, m, label) for (t, m), label in latest.items() if t in feature_ids
    }
