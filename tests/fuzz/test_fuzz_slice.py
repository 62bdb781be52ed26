"""A bounded slice of `make fuzz` in the normal test run: every decoder stays total.

Hypothesis draws, per decoder, raw bytes, byte-level damage to a real record, and the
fuzzer's structured mutations (wrongly typed, huge, non-finite, deeply nested values,
dropped fields); the target's own checks (`decoder_targets`) say what must hold.
A few seconds in all; `make fuzz` runs a million coverage-guided executions each.
"""

from __future__ import annotations

import random

import pytest
from fuzz.decoder_targets import TARGETS, mutate_structure
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk.domain import DecodeFailure


@st.composite
def inputs(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """Raw bytes, a damaged real record, or one to three structured mutations of one."""
    kind = draw(st.sampled_from(("bytes", "damaged", "structured")))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    data = draw(st.sampled_from(seeds))
    if kind == "damaged":
        cut = draw(st.integers(0, len(data)))
        return data[:cut] + draw(st.binary(max_size=8)) + data[cut + 1 :]
    rng = random.Random(draw(st.integers(0, 2**32)))
    for _ in range(draw(st.integers(1, 3))):
        data = mutate_structure(data, rng) or data
    return data


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_decoder_on_fuzzed_input_returns_value_or_dead_letter(name: str) -> None:
    target = TARGETS[name]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(inputs(target.seeds))
    def check(data: bytes) -> None:
        target.run(data)

    check()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_decoder_seed_records_decode_to_values(name: str) -> None:
    target = TARGETS[name]
    decoded = [target.decode(seed) for seed in target.seeds]

    assert decoded
    assert not [item for item in decoded if isinstance(item, DecodeFailure)]
