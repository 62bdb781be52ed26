"""Tests for the synthetic market simulator."""

from __future__ import annotations

import itertools
import math
import pickle
from dataclasses import replace

import numpy as np
import pytest

from connectors.codec import decode_tick, encode
from connectors.feeds.simulator import (
    Regime,
    SimulationConfig,
    Simulator,
    simulate,
    stamp,
)
from risk.domain import TickKind
from risk.domain.error import ConfigError

# One "year" per 100 s of event time: per-tick moves large enough to measure.
FAST = SimulationConfig(seconds_per_year=100.0, jump_intensity_annual=0.0, seed=11)


def encoded(config: SimulationConfig, n: int) -> list[bytes]:
    return [encode(record) for record in simulate(config, n)]


def test_simulate_same_seed_gives_byte_identical_records() -> None:
    assert encoded(SimulationConfig(seed=3), 10_000) == encoded(SimulationConfig(seed=3), 10_000)


def test_simulate_other_seed_gives_other_records() -> None:
    assert encoded(SimulationConfig(seed=3), 100) != encoded(SimulationConfig(seed=4), 100)


def test_simulate_short_run_is_prefix_of_long_run() -> None:
    config = SimulationConfig(chunk_size=64)
    assert encoded(config, 100) == encoded(config, 1_000)[:100]


def test_simulator_resumed_from_pickle_continues_identically() -> None:
    simulator = Simulator(FAST)
    simulator.next_columns()
    restored = pickle.loads(pickle.dumps(simulator))
    first, second = simulator.next_columns(), restored.next_columns()
    assert first.price.tolist() == second.price.tolist()
    assert first.seq.tolist() == second.seq.tolist()


@pytest.mark.parametrize(
    "config",
    [
        SimulationConfig(),
        replace(FAST, stressed_vol_annual=5.0, p_calm_to_stressed=1e-3, p_stressed_to_calm=1e-3),
        replace(FAST, jump_intensity_annual=500.0, jump_mean_log=-0.2, jump_std_log=0.3),
        SimulationConfig(quote_fraction=0.5, initial_prices=(0.02,) * 10),
    ],
)
def test_simulate_records_pass_validation_with_positive_prices_and_sizes(
    config: SimulationConfig,
) -> None:
    for record in simulate(config, 20_000):
        tick = decode_tick(encode(record), frozenset(config.symbols))
        assert tick.price > 0 and math.isfinite(tick.price)
        assert tick.bid is not None and tick.ask is not None and tick.bid < tick.ask
        assert tick.bid_size and tick.ask_size and tick.bid_size > 0 and tick.ask_size > 0
        assert tick.size > 0 if tick.kind is TickKind.TRADE else tick.size == 0.0
        assert tick.ts_init == tick.ts_event


def test_simulate_seq_counts_from_one_per_instrument_and_time_increases() -> None:
    records = list(simulate(SimulationConfig(), 10_000))
    last_seq: dict[str, int] = {}
    for record in records:
        assert record["seq"] == last_seq.get(record["instrument"], 0) + 1
        last_seq[record["instrument"]] = record["seq"]
    stamps = [record["ts_event"] for record in records]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert set(last_seq) == set(SimulationConfig().symbols)


def test_simulate_event_rate_matches_ticks_per_second() -> None:
    records = list(simulate(SimulationConfig(ticks_per_second=500.0), 20_000))
    span_s = (records[-1]["ts_event"] - records[0]["ts_event"]) / 1e9
    assert len(records) / span_s == pytest.approx(500.0, rel=0.05)


def test_simulate_round_robin_cycles_symbols_in_order() -> None:
    config = SimulationConfig(symbols=("A", "B", "C"), round_robin=True)
    assert [r["instrument"] for r in simulate(config, 6)] == ["A", "B", "C"] * 2


def binned_returns(config: SimulationConfig, n_ticks: int, bin_steps: int) -> np.ndarray:
    """Log returns of each symbol's last observed mid per bin of `bin_steps` ticks."""
    simulator, n = Simulator(config), len(config.symbols)
    last = np.full(n, np.nan)
    rows = []
    for _ in range(n_ticks // config.chunk_size):
        columns = simulator.next_columns()
        mids = (columns.bid + columns.ask) / 2
        for start in range(0, config.chunk_size, bin_steps):
            for index, mid in zip(
                columns.symbol_index[start : start + bin_steps],
                mids[start : start + bin_steps],
                strict=True,
            ):
                last[index] = mid
            rows.append(last.copy())
    return np.diff(np.log(np.array(rows[1:])), axis=0)


def test_simulated_returns_have_configured_pairwise_correlation() -> None:
    returns = binned_returns(FAST, 4096 * 50, 256)
    corr = np.corrcoef(returns.T)
    mean_pairwise = corr[np.triu_indices_from(corr, k=1)].mean()
    assert 0.22 < mean_pairwise < 0.38


def test_simulated_returns_with_zero_correlation_are_uncorrelated() -> None:
    returns = binned_returns(replace(FAST, correlation=0.0), 4096 * 50, 256)
    corr = np.corrcoef(returns.T)
    assert abs(corr[np.triu_indices_from(corr, k=1)].mean()) < 0.06


def test_simulator_switches_regime_and_stressed_moves_are_larger() -> None:
    config = replace(
        FAST, round_robin=True, p_calm_to_stressed=2e-4, p_stressed_to_calm=1e-3,
        stressed_vol_annual=2.0,
    )  # fmt: skip
    simulator, n = Simulator(config), len(config.symbols)
    moves: dict[int, list[float]] = {Regime.CALM: [], Regime.STRESSED: []}
    for _ in range(50):
        columns = simulator.next_columns()
        mids = (columns.bid + columns.ask) / 2
        # Round robin: the same symbol recurs every n steps.
        step = np.abs(np.log(mids[n:] / mids[:-n]))
        for regime in Regime:
            moves[regime].extend(step[columns.regime[n:] == regime].tolist())
    assert simulator.regime_switches >= 4
    assert len(moves[Regime.STRESSED]) > 1000
    assert np.mean(moves[Regime.STRESSED]) > 3 * np.mean(moves[Regime.CALM])


def test_simulator_without_switch_probability_stays_calm() -> None:
    simulator = Simulator(replace(FAST, p_calm_to_stressed=0.0))
    regimes = np.concatenate([simulator.next_columns().regime for _ in range(10)])
    assert simulator.regime_switches == 0 and not regimes.any()


def test_simulator_jumps_occur_and_show_as_large_moves() -> None:
    config = replace(
        FAST, round_robin=True, jump_intensity_annual=200.0, jump_mean_log=0.0,
        jump_std_log=0.2,
    )  # fmt: skip
    simulator, n = Simulator(config), len(config.symbols)
    columns = [simulator.next_columns() for _ in range(10)]
    mids = np.concatenate([(c.bid + c.ask) / 2 for c in columns])
    big_moves = int((np.abs(np.log(mids[n:] / mids[:-n])) > 0.1).sum())
    assert sum(c.jumps for c in columns) > 20
    assert big_moves > 5


def test_simulator_without_jumps_has_no_large_moves() -> None:
    simulator, n = Simulator(replace(FAST, round_robin=True)), len(FAST.symbols)
    columns = simulator.next_columns()
    mids = (columns.bid + columns.ask) / 2
    assert simulator.jumps == 0
    assert (np.abs(np.log(mids[n:] / mids[:-n])) < 0.1).all()


def test_simulation_config_with_several_errors_lists_them_all() -> None:
    with pytest.raises(ConfigError) as info:
        SimulationConfig(symbols=("A", "A"), correlation=1.0, spread_bps=0.0)
    message = str(info.value)
    assert "unique" in message and "correlation" in message and "spread_bps" in message


def test_stamp_sets_ts_init_and_leaves_record_unchanged() -> None:
    record = next(simulate(SimulationConfig(), 1))
    stamped = stamp(record, 42)
    assert stamped["ts_init"] == 42 and stamped["ts_event"] == record["ts_event"]
    assert record["ts_init"] == record["ts_event"]
