"""`hfl up --feed-live`: the live venue feed is one of the supervised components."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dataflows.commands import parser
from dataflows.ops.stack import components
from dataflows.settings import Settings
from risk.domain.error import HflError


def test_feed_live_adds_a_restartable_feed_component(tmp_path: Path) -> None:
    found = components(
        Settings(), tmp_path, local_broker=False, feed_duration_s=None,
        feed_live="coinbase,kraken", feed_symbols="BTC-USD,ETH-USD",
    )  # fmt: skip
    feed = [c for c in found if c.name == "feed"]
    assert len(feed) == 1
    assert list(feed[0].command) == [
        sys.executable, "-m", "dataflows.commands", "feed", "live",
        "--venues", "coinbase,kraken", "--symbols", "BTC-USD,ETH-USD",
    ]  # fmt: skip
    assert feed[0].final_exits == frozenset()  # a crash is restarted with backoff
    every = components(
        Settings(), tmp_path, local_broker=False, feed_duration_s=None, feed_live="all"
    )
    assert [c.command[-1] for c in every if c.name == "feed"] == ["live"]


def test_one_feed_only(tmp_path: Path) -> None:
    with pytest.raises(HflError, match="one feed"):
        components(Settings(), tmp_path, local_broker=False, feed_duration_s=5.0, feed_live="all")


def test_up_parses_feed_live() -> None:
    args = parser().parse_args(["up", "--feed-live", "binance", "--feed-symbols", "BTC-USDT"])
    assert (args.feed_live, args.feed_symbols) == ("binance", "BTC-USDT")
