"""Property tests of the multi-factor signal engine on arbitrary tick streams.

Whatever the prices, model probabilities and configuration: a target change is
emitted only when the target changes, never within the minimum hold of the last
change, never beyond the turnover budget of its window, never below the cost gate
when entering; and the same input gives the same targets.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from online_models.signal_multifactor import FLAT, MultiFactorConfig, MultiFactorEngine

ticks = st.lists(
    st.tuples(
        st.floats(min_value=1.0, max_value=1_000.0),  # price
        st.floats(min_value=0.0, max_value=1.0),  # champion probability
        st.floats(min_value=-1.0, max_value=1.0),  # challengers' mean score
    ),
    min_size=1,
    max_size=400,
)
configs = st.builds(
    MultiFactorConfig,
    cost_bps=st.floats(min_value=0.0, max_value=5.0),
    edge_multiple=st.floats(min_value=0.0, max_value=3.0),
    horizon_ticks=st.integers(1, 10),
    momentum_ticks=st.integers(1, 10),
    mean_ticks=st.integers(1, 10),
    refit_ticks=st.integers(1, 5),
    min_learned=st.integers(0, 20),
    min_labelled=st.just(0),
    min_hold_ticks=st.integers(0, 15),
    turnover_window_ticks=st.integers(1, 60),
    max_turnover=st.floats(min_value=2.0, max_value=6.0),
    weights=st.one_of(
        st.none(),
        st.tuples(*[st.floats(min_value=-200.0, max_value=200.0)] * 6),
    ),
)


def replay(config: MultiFactorConfig, stream: list[tuple[float, float, float]]) -> list:
    engine = MultiFactorEngine(config)
    changes = []
    for i, (price, p, peers) in enumerate(stream, start=1):
        before = engine.direction
        target = engine.step(price, p, peers, 1)
        if target is None:
            assert engine.direction == before  # no change without an emission
        else:
            assert target != before  # no emission without a change
            changes.append((i, before, target, engine.edge))
    return changes


@settings(max_examples=150, deadline=None)
@given(configs, ticks)
def test_hold_turnover_and_cost_gate(
    config: MultiFactorConfig, stream: list[tuple[float, float, float]]
) -> None:
    changes = replay(config, stream)
    gate = config.edge_multiple * 2.0 * config.cost_bps
    for (t0, _, _, _), (t1, _, _, _) in pairwise(changes):
        assert t1 - t0 >= config.min_hold_ticks  # no reversal (nor any change) within the hold
    for k, (t, before, after, edge) in enumerate(changes):
        window = [c for c in changes[: k + 1] if c[0] > t - config.turnover_window_ticks]
        used = sum(abs(a - b) for _, b, a, _ in window)
        assert used <= config.max_turnover  # budget respected in every window
        if after != FLAT:
            assert abs(edge) > gate and (edge > 0) == (after > 0)  # entries pass the gate
        else:
            assert before * edge < 0 or abs(edge) <= gate  # exits only when the edge turned


@settings(max_examples=50, deadline=None)
@given(configs, ticks)
def test_same_input_same_targets(
    config: MultiFactorConfig, stream: list[tuple[float, float, float]]
) -> None:
    assert replay(config, stream) == replay(config, stream)
