"""The model step screens ticks for outliers: a bad print is one dead letter with reason
`outlier_price_jump`, the ticks around it go through, and the screen survives a snapshot."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from connectors.codec import encode
from connectors.kafka.record import KafkaRecord
from dataflows.flows.trading import InstrumentState, decode_ticks, handle_ticks, model_spec
from dataflows.settings import OutlierSettings, Settings, load_settings
from risk.domain import Alert, DecodeFailure
from risk.domain.error import ConfigError
from risk.outlier import OutlierAction, OutlierConfig, OutlierRule, OutlierScreen

S = 1_000_000_000


def record(offset: int, price: float) -> KafkaRecord:
    tick = {
        "instrument": "AAPL", "seq": offset + 1, "kind": "trade", "price": price,
        "size": 10.0, "ts_event": 1_700_000_000 * S + offset * S, "ts_init": 0,
    }  # fmt: skip
    tick["ts_init"] = tick["ts_event"]
    return KafkaRecord("md.ticks", 0, offset, b"AAPL", encode(tick), tick["ts_event"])


def test_bad_print_is_dead_lettered_as_outlier_and_the_stream_goes_on(settings: Settings) -> None:
    prices = [100.0 + (0.2 if n % 2 else -0.2) for n in range(60)]
    prices[40] = 300.0  # a fat-finger print three times the market
    decode = decode_ticks(frozenset(settings.trading.instruments))
    items = [item for item in decode([record(n, p) for n, p in enumerate(prices)])]
    state = InstrumentState(model_spec(settings))
    out = handle_ticks(state, [value for _, value in items[:30]])
    state = pickle.loads(pickle.dumps(state))  # a snapshot in between
    out += handle_ticks(state, [value for _, value in items[30:]])
    dead = [e for e in out if isinstance(e, DecodeFailure)]
    assert [(d.reason.value, d.offset) for d in dead] == [("outlier_price_jump", 40)]
    assert state.last_seq["AAPL"] == 60


def _locked(offset: int) -> KafkaRecord:
    tick = {
        "instrument": "AAPL", "seq": offset + 1, "kind": "quote", "price": 100.0, "size": 0.0,
        "bid": 100.0, "ask": 100.0, "bid_size": 5.0, "ask_size": 5.0,
        "ts_event": 1_700_000_000 * S + offset * S,
    }  # fmt: skip
    tick["ts_init"] = tick["ts_event"]
    return KafkaRecord("md.ticks", 0, offset, b"AAPL", encode(tick), tick["ts_event"])


def _run(settings: Settings, records: list[KafkaRecord]) -> list[object]:
    decode = decode_ticks(frozenset(settings.trading.instruments))
    state = InstrumentState(
        model_spec(settings), outliers=OutlierScreen(settings.outliers.config())
    )
    return list(handle_ticks(state, [value for _, value in decode(records)]))


def test_flagged_ticks_pass_and_raise_one_alert_a_minute_with_their_count(
    settings: Settings,
) -> None:
    # 150 locked quotes one second apart: all pass, flag alerts at 0 s, 60 s and 120 s.
    out = _run(settings, [_locked(n) for n in range(150)])
    alerts = [e for e in out if isinstance(e, Alert) and e.name == "outlier_flag"]
    assert not [e for e in out if isinstance(e, DecodeFailure)]
    assert [a.message.split(" tick(s)")[0] for a in alerts] == [
        "locked_quote: 1", "locked_quote: 60", "locked_quote: 60"
    ]  # fmt: skip
    assert all(a.subject == "AAPL" for a in alerts)


def test_each_rule_takes_its_action_from_settings(settings: Settings) -> None:
    dead_letter = replace(
        settings, outliers=replace(settings.outliers, locked_quote=OutlierAction.DEAD_LETTER)
    )
    out = _run(dead_letter, [_locked(n) for n in range(3)])
    assert [e.reason.value for e in out if isinstance(e, DecodeFailure)] == [
        "outlier_locked_quote"
    ] * 3
    off = replace(settings, outliers=replace(settings.outliers, locked_quote=OutlierAction.OFF))
    out = _run(off, [_locked(n) for n in range(3)])
    assert not [e for e in out if isinstance(e, DecodeFailure | Alert)]


def test_outlier_settings_load_from_yaml_and_environment(tmp_path: Path) -> None:
    (tmp_path / "trading.yaml").write_text(
        "outliers:\n  price_jump: flag\n  mad_threshold: 6\n  flag_alert_interval_s: 5\n"
    )
    loaded = load_settings(tmp_path, env={"HFL_OUTLIERS__ZERO_SIZE": "off"})
    config = loaded.outliers.config()
    assert config.action(OutlierRule.PRICE_JUMP) is OutlierAction.FLAG
    assert config.action(OutlierRule.ZERO_SIZE) is OutlierAction.OFF
    assert config.action(OutlierRule.CROSSED_QUOTE) is OutlierAction.DEAD_LETTER
    assert (config.mad_threshold, config.flag_alert_interval_ns) == (6.0, 5 * S)
    # A live feed's defaults are the report's; otherwise (replays) stale_timestamp is off.
    live = load_settings("builtin", env={"HFL_DATA__LIVE": "true"}).outliers
    assert live.config() == OutlierConfig()
    assert OutlierSettings().config().action(OutlierRule.STALE_TIMESTAMP) is OutlierAction.OFF
    (tmp_path / "trading.yaml").write_text("outliers:\n  price_jump: drop\n  window: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={})
    assert "price_jump" in str(caught.value) or "drop" in str(caught.value)


def _venue_trade(offset: int, venue: str, trade_id: int) -> KafkaRecord:
    tick = {
        "instrument": "AAPL", "seq": offset + 1, "kind": "trade", "price": 100.0,
        "size": 1.0, "ts_event": 1_700_000_000 * S + offset * S, "venue": venue,
        "venue_trade_id": trade_id,
    }  # fmt: skip
    tick["ts_init"] = tick["ts_event"]
    return KafkaRecord("md.ticks", 0, offset, b"AAPL", encode(tick), tick["ts_event"])


def test_a_venue_trade_id_going_backwards_is_out_of_order_per_venue(settings: Settings) -> None:
    # Two venues interleave (failover): each one's ids rise, so nothing is caught; then
    # coinbase sends an id it had already passed.
    ids = [("coinbase", 10), ("kraken", 500), ("coinbase", 11), ("kraken", 501),
           ("coinbase", 12), ("coinbase", 9), ("coinbase", 13)]  # fmt: skip
    out = _run(settings, [_venue_trade(n, v, i) for n, (v, i) in enumerate(ids)])
    dead = [e for e in out if isinstance(e, DecodeFailure)]
    assert [(d.reason.value, d.offset) for d in dead] == [("outlier_out_of_order", 5)]
