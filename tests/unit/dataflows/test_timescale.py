"""The data's time scale: interval estimation, every derived figure, and the risk model's
volatility and VaR at the data's own frequency against empyrical.

The real series is River's SP500Stocks as the replay CSV writes it
(`connectors.feeds.sp500`: ten stocks' daily closes at the real dates' NYSE close, so
weekends and holidays are in the event times). The intraday series is the same closes
stamped one minute apart, a session of 390 minutes a day: what matters there is that
the figures annualise by minutes, not by seconds.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import empyrical
import numpy as np
import pytest

from connectors.feeds.sp500 import write_sp500_prices
from dataflows.settings import Settings, load_settings
from dataflows.settings_domain import model_spec, paper_config, risk_limits, risk_model
from risk.monitor import PortfolioRisk
from risk.timescale import (
    NS_PER_DAY,
    NS_PER_S,
    TICK,
    TimeScale,
    estimate_interval_ns,
    format_interval,
    parse_interval,
)

REL = 1e-9
EQUITY = 1_000_000.0
MINUTE = 60 * NS_PER_S


@pytest.fixture(scope="module")
def closes(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, float]]:
    path = tmp_path_factory.mktemp("sp500") / "sp500.csv"
    write_sp500_prices(path)
    with path.open(newline="") as handle:
        return [(r["instrument"], int(r["ts"]), float(r["price"])) for r in csv.DictReader(handle)]


# -- parsing and estimation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [("1d", NS_PER_DAY), ("1m", MINUTE), ("5min", 5 * MINUTE), ("1s", NS_PER_S),
     ("250ms", 250_000_000), ("1w", 7 * NS_PER_DAY), ("1.5h", 5_400 * NS_PER_S)],
)  # fmt: skip
def test_intervals_parse_and_print_back(text: str, ns: int) -> None:
    assert parse_interval(text) == ns
    assert parse_interval(format_interval(ns)) == ns


@pytest.mark.parametrize("text", ["", "auto", "0s", "-1d", "1y", "d"])
def test_a_bad_interval_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="bar interval"):
        parse_interval(text)


def test_the_real_daily_closes_are_one_day_apart(closes: list[tuple[str, int, float]]) -> None:
    # Weekends (3 days) and holidays (4 days) are in the gaps; the median ignores them.
    assert estimate_interval_ns((name, ts) for name, ts, _ in closes) == NS_PER_DAY


def test_the_estimate_reads_only_the_warm_window(closes: list[tuple[str, int, float]]) -> None:
    # The first 200 closes of each instrument decide; what follows (here: minute bars)
    # is never read, so the estimate is the same however long the input is.
    later = closes[-1][1]
    tail = [(name, later + (i + 1) * MINUTE) for i, (name, _, _) in enumerate(closes[:5000])]
    pairs = [(name, ts) for name, ts, _ in closes] + tail
    assert estimate_interval_ns(pairs) == NS_PER_DAY
    assert estimate_interval_ns(pairs, warm=10_000) == NS_PER_DAY  # 1,257 days beat 500 minutes


def test_the_estimate_ignores_repeated_times_and_instrument_order() -> None:
    # Two instruments, a trade and a quote per minute (same event time), out of phase.
    a = [("A", t * MINUTE) for t in range(50) for _ in range(2)]
    b = [("B", t * MINUTE + 30 * NS_PER_S) for t in range(50)]
    interleaved = [pair for pair_ab in zip(a, b + b, strict=True) for pair in pair_ab]
    assert estimate_interval_ns(a + b) == estimate_interval_ns(interleaved) == MINUTE
    assert estimate_interval_ns([("A", 1), ("A", 1), ("B", 7)]) is None


def test_ticks_estimate_below_a_second_and_scale_as_ticks() -> None:
    ticks = [("A", i * 20_000_000) for i in range(300)]  # 50 ticks a second
    scale = TimeScale(estimate_interval_ns(ticks) or 0)
    assert scale.interval_ns == 20_000_000
    # Every figure is floored at the tick-data scale (what the system always used).
    for name in ("sample_ns", "periods_per_day", "recompute_ns", "time_in_force_ns",
                 "tick_buffer_ns", "metrics_ns", "checkpoint_ns", "min_labelled"):  # fmt: skip
        assert getattr(scale, name) == getattr(TICK, name), name


# -- every derived scale -------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "per_day", "tif", "buffer", "metrics", "checkpoint", "labelled"),
    [
        ("1d", 1.0, 5 * NS_PER_DAY, 60 * NS_PER_DAY, NS_PER_DAY, 250 * NS_PER_DAY, 20),
        ("1m", 390.0, 5 * MINUTE, 60 * MINUTE, MINUTE, 250 * MINUTE, 200),
        ("1s", 23_400.0, 5 * NS_PER_S, 60 * NS_PER_S, 10 * NS_PER_S, 60 * NS_PER_S, 200),
        ("1w", 0.2, 35 * NS_PER_DAY, 420 * NS_PER_DAY, 7 * NS_PER_DAY, 1750 * NS_PER_DAY, 20),
    ],
)
def test_each_scale_derives_from_the_interval(  # noqa: PLR0917 - one row of the table
    interval: str,
    per_day: float,
    tif: int,
    buffer: int,
    metrics: int,
    checkpoint: int,
    labelled: int,
) -> None:
    scale = TimeScale(parse_interval(interval))
    assert scale.periods_per_day == pytest.approx(per_day, rel=REL)
    assert scale.periods_per_year == pytest.approx(per_day * 252, rel=REL)
    assert scale.sample_ns == max(scale.interval_ns, NS_PER_S)
    assert scale.recompute_ns == max(5 * NS_PER_S, scale.interval_ns)
    assert scale.time_in_force_ns == tif
    assert scale.reference_age_ns == tif
    assert scale.tick_buffer_ns == buffer
    assert scale.metrics_ns == metrics
    assert scale.checkpoint_ns == checkpoint
    assert scale.min_labelled == labelled
    # An order decided on bar t can fill on bar t + 1 (and after a weekend for days).
    assert scale.time_in_force_ns > 3 * scale.interval_ns
    assert scale.tick_buffer_ns > scale.time_in_force_ns


def test_checkpoints_and_metrics_cost_no_more_per_bar_when_bars_are_days() -> None:
    # At most one checkpoint per 250 bars and one metrics row per bar, whatever the
    # event time between bars: never one per tick because a day passed.
    for interval in ("1m", "1h", "1d", "1w"):
        scale = TimeScale(parse_interval(interval))
        assert scale.checkpoint_ns >= 250 * scale.interval_ns
        assert scale.metrics_ns >= scale.interval_ns


def test_settings_derive_from_the_declared_interval_and_keep_explicit_values() -> None:
    day = load_settings(env={"HFL_DATA__BAR_INTERVAL": "1d"})
    config = risk_model(day.risk)
    assert (config.sample_interval_ns, config.periods_per_day) == (NS_PER_DAY, 1.0)
    assert config.recompute_interval_ns == NS_PER_DAY
    assert risk_limits(day.risk.limits).time_in_force_ns == 5 * NS_PER_DAY
    assert paper_config(day).tick_buffer_ns == 60 * NS_PER_DAY
    spec = model_spec(day)
    assert spec.signal.min_labelled == 20
    assert spec.models.checkpoint_interval_ns == 250 * NS_PER_DAY
    assert spec.models.metrics_interval_ns == NS_PER_DAY
    # A value set explicitly wins over the derived one.
    fixed = load_settings(
        env={"HFL_DATA__BAR_INTERVAL": "1d", "HFL_RISK__LIMITS__TIME_IN_FORCE_MS": "7000"}
    )
    assert fixed.risk.limits.time_in_force_ms == 7000
    # Unresolved (auto, no estimate) and in-code settings: the tick scale.
    for ticks in (load_settings(), Settings()):
        assert risk_model(ticks.risk).periods_per_day == 23_400.0
        assert risk_limits(ticks.risk.limits).time_in_force_ns == 5 * NS_PER_S
        assert model_spec(ticks).signal.min_labelled == 200


def test_stale_timestamp_flags_only_a_live_feed() -> None:
    assert load_settings().outliers.config().actions[_stale()].value == "off"
    live = load_settings(env={"HFL_DATA__LIVE": "true"})
    assert live.outliers.config().actions[_stale()].value == "flag"
    chosen = load_settings(env={"HFL_OUTLIERS__STALE_TIMESTAMP": "dead_letter"})
    assert chosen.outliers.config().actions[_stale()].value == "dead_letter"


def _stale() -> object:
    from risk.outlier import OutlierRule

    return OutlierRule.STALE_TIMESTAMP


# -- volatility and VaR at the data's own frequency ----------------------------------


def _book_figures(
    series: list[tuple[str, int, float]], interval: str
) -> tuple[dict[str, float], np.ndarray, PortfolioRisk, dict[str, np.ndarray]]:
    """The risk model as the settings derive it, fed `series`; the book P&L per sample."""
    settings = load_settings(env={"HFL_DATA__BAR_INTERVAL": interval})
    config = risk_model(settings.risk)
    names = tuple(dict.fromkeys(name for name, _, _ in series))
    risk = PortfolioRisk(names, config)
    for name, ts, price in series:
        risk.on_price(name, price, ts)
    last_ts = series[-1][1]
    first_last = next(price for name, _, price in reversed(series) if name == names[0])
    risk.on_price(names[0], first_last, last_ts + config.sample_interval_ns)  # closes it
    quantities = {name: (i - 3) * 100.0 for i, name in enumerate(names)}
    for name, quantity in quantities.items():
        risk.add_quantity(name, quantity)
    figures = risk.recompute(last_ts + config.sample_interval_ns, EQUITY)
    prices = {name: np.array([p for n, _, p in series if n == name]) for name in names}
    returns = {name: (p[1:] / p[:-1] - 1.0)[-config.window :] for name, p in prices.items()}
    weights = np.array([quantities[n] * prices[n][-1] for n in names])
    pnl = np.column_stack([returns[n] for n in names]) @ weights
    return figures, pnl, risk, returns


@pytest.mark.parametrize("bars", ["daily", "minute"])
def test_volatility_and_var_equal_empyrical_at_the_datas_frequency(
    closes: list[tuple[str, int, float]], bars: str
) -> None:
    if bars == "minute":  # the same closes, one a minute through 390-minute sessions
        days = sorted({ts for _, ts, _ in closes})
        stamp = {ts: (i // 390) * NS_PER_DAY + (i % 390) * MINUTE for i, ts in enumerate(days)}
        series = [(name, stamp[ts], price) for name, ts, price in closes]
    else:
        series = closes
    interval = format_interval(estimate_interval_ns((n, t) for n, t, _ in series) or 0)
    assert interval == ("1d" if bars == "daily" else "1m")
    scale = TimeScale(parse_interval(interval))
    figures, pnl, risk, returns = _book_figures(series, interval)
    per_year, per_day = scale.periods_per_year, scale.periods_per_day
    assert per_year == (252.0 if bars == "daily" else 390.0 * 252)
    assert figures["samples"] == 250
    # Volatility: annualised at the data's own frequency, as empyrical annualises it.
    book_vol = empyrical.annual_volatility(pnl, annualization=per_year)
    assert figures["volatility"] * EQUITY == pytest.approx(book_vol, rel=REL)
    for name, series_returns in returns.items():
        expected = empyrical.annual_volatility(series_returns, annualization=per_year)
        assert risk.volatility(name) == pytest.approx(expected, rel=REL)
    # VaR and CVaR: one sample's, scaled to one trading day (sqrt of samples per day).
    day = math.sqrt(per_day)
    var = -empyrical.value_at_risk(pnl, 0.01) * day
    cvar = -empyrical.conditional_value_at_risk(pnl, 0.01) * day
    assert figures["var_hist"] * EQUITY == pytest.approx(var, rel=REL)
    assert figures["cvar_hist"] * EQUITY == pytest.approx(cvar, rel=REL)


def test_the_shipped_config_derives_everything(tmp_path: Path) -> None:
    # config/*.yaml leaves every derived setting null: each follows data.bar_interval.
    settings = load_settings(env={"HFL_DATA__BAR_INTERVAL": "1m"})
    scale = TimeScale(MINUTE)
    assert settings.risk.model.periods_per_day == scale.periods_per_day
    assert settings.risk.model.sample_interval_ms == MINUTE // 1_000_000
    assert settings.risk.limits.time_in_force_ms == scale.time_in_force_ns // 1_000_000
    assert settings.risk.limits.max_reference_age_ms == scale.reference_age_ns // 1_000_000
    assert settings.gateway.tick_buffer_s == scale.tick_buffer_ns / NS_PER_S
    assert settings.model.metrics_interval_s == scale.metrics_ns / NS_PER_S
    assert settings.model.checkpoint_interval_s == scale.checkpoint_ns / NS_PER_S
    assert settings.model.min_labelled == scale.min_labelled
    assert settings.dashboard.stale_data_s == 5 * 60  # 5 bars without a tick: stale data
    assert load_settings().dashboard.stale_data_s == 10  # ticks: as before


def test_a_replay_of_daily_closes_tells_the_flows_bar_interval(
    closes: list[tuple[str, int, float]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `hfl feed replay` cannot hand the flows its estimate: it says what to declare.
    from dataflows.commands.operations import _hint_bar_interval
    from dataflows.settings import DataSettings

    path = tmp_path / "closes.csv"
    path.write_text(
        "instrument,ts,price,size\n" + "".join(f"{n},{t},{p},1\n" for n, t, p in closes[:500])
    )
    _hint_bar_interval(Settings(), str(path), None)
    assert "HFL_DATA__BAR_INTERVAL=1d" in capsys.readouterr().err
    _hint_bar_interval(Settings(data=DataSettings(bar_interval="1d")), str(path), None)
    assert capsys.readouterr().err == ""  # declared: nothing to say
