"""InstrumentScorer: predict-then-learn on delayed labels, checked against River's evaluator."""

from __future__ import annotations

import bisect
import datetime as dt
import pickle
from functools import cache
from typing import Any

import pytest
from river import compose, datasets, evaluate, metrics, stream, utils

from online_models.pipeline import PIPELINES, build_pipeline, logistic_pipeline
from online_models.scorer import InstrumentScorer, TickInput
from risk.domain.ids import tick_id
from risk.domain.model import Prediction

TICKERS = ["AAPL", "AMZN", "IBM", "INTC", "JNJ", "JPM", "KO", "MSFT", "WMT", "XOM"]
DAY_NS = 86_400 * 10**9
HORIZON_NS = 2 * DAY_NS  # Thu/Fri predictions resolve on Monday: irregular in ticks.
SEED = 7


@cache
def sp500_stream() -> tuple[list[TickInput], list[int]]:
    """River's bundled SP500 returns as AAPL ticks: ts = trading day, price = AAPL index.

    Returns the ticks (tick_id, ts_event, price, features = the ten stocks' returns
    that day) and, for each tick, its label by the scorer's rule: AAPL's price at
    the first tick at/after ts + horizon is above its price then.
    """
    rows = stream.iter_csv(
        datasets.SP500Stocks().path,
        target="next_day_return",
        converters=dict.fromkeys(TICKERS, float),
        parse_dates={"date": "%Y-%m-%d"},
    )
    ticks: list[TickInput] = []
    price = 100.0
    for seq, (x, _) in enumerate(rows):
        date = x.pop("date").replace(tzinfo=dt.UTC)
        price *= 1.0 + x["AAPL"] / 100.0
        ts = int(date.timestamp()) * 10**9
        ticks.append((tick_id("AAPL", seq, ts), ts, price, x))
    times = [ts for _, ts, _, _ in ticks]
    labels = []
    for _, ts, price_then, _ in ticks:
        j = bisect.bisect_left(times, ts + HORIZON_NS)
        labels.append(1 if j < len(ticks) and ticks[j][2] > price_then else 0)
    return ticks, labels


def resolvable_count(ticks: list[TickInput]) -> int:
    """Number of leading ticks whose horizon elapses within the stream."""
    last_ts = ticks[-1][1]
    return sum(1 for _, ts, _, _ in ticks if ts + HORIZON_NS <= last_ts)


def run_scorer(
    scorer: InstrumentScorer, ticks: list[TickInput], n_predict: int
) -> list[Prediction]:
    """Feed every tick; only the first `n_predict` carry features, the rest resolve labels."""
    out: list[Prediction] = []
    for i, (tid, ts, price, features) in enumerate(ticks):
        out.extend(scorer.update(tid, ts, price, features if i < n_predict else None))
    return out


def river_run(metric: Any, n_predict: int) -> list[dict[str, Any]]:
    """River's own delayed progressive validation on the same samples, event time = date."""
    ticks, labels = sp500_stream()
    dataset = [
        ({"date": ts, **features}, labels[i] == 1)
        for i, (_, ts, _, features) in enumerate(ticks[:n_predict])
    ]
    # Discard keeps the timestamp out of the model; the remaining keys keep their order,
    # so the dot products are summed in the same order as in the scorer.
    model = compose.Discard("date") | logistic_pipeline(seed=SEED)
    return list(
        evaluate.iter_progressive_val_score(
            dataset, model, metric, moment="date", delay=HORIZON_NS, yield_predictions=True
        )
    )


def test_sp500_stream_labels_match_scorer_labels() -> None:
    ticks, labels = sp500_stream()
    n = resolvable_count(ticks)
    scorer = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)

    labelled = [p for p in run_scorer(scorer, ticks, n) if p.version == 1]

    assert n > 1_200
    assert [p.label for p in labelled] == labels[:n]


def test_accuracy_equals_river_progressive_val_score_with_delay() -> None:
    ticks, _ = sp500_stream()
    n = resolvable_count(ticks)
    scorer = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)
    labelled = [p for p in run_scorer(scorer, ticks, n) if p.version == 1]

    steps = river_run(metrics.Accuracy(), n)

    assert scorer.n_labelled == n == len(steps)
    assert scorer.accuracy == pytest.approx(steps[-1]["Accuracy"].get(), abs=1e-12)
    assert [s["Prediction"] for s in steps] == [p.probability_up > 0.5 for p in labelled]
    assert 0.3 < scorer.accuracy < 0.7


def test_probabilities_equal_river_progressive_val_score_step_by_step() -> None:
    ticks, _ = sp500_stream()
    n = resolvable_count(ticks)
    scorer = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)
    labelled = [p for p in run_scorer(scorer, ticks, n) if p.version == 1]

    steps = river_run(metrics.LogLoss(), n)

    assert [s["Prediction"][True] for s in steps] == [p.probability_up for p in labelled]
    assert len({p.probability_up for p in labelled}) > 1_000  # the model really learnt


def test_rolling_accuracy_equals_river_rolling_accuracy() -> None:
    ticks, _ = sp500_stream()
    scorer = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED, rolling_window=100)
    rolling = utils.Rolling(metrics.Accuracy, window_size=100)

    for tid, ts, price, features in ticks:
        for p in scorer.update(tid, ts, price, features):
            if p.version == 1:
                rolling.update(p.label == 1, p.probability_up > 0.5)
        assert scorer.rolling_accuracy == pytest.approx(rolling.get(), abs=1e-12)

    assert scorer.n_labelled > 100


def test_update_same_seed_gives_identical_predictions() -> None:
    ticks, _ = sp500_stream()
    first = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)
    second = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)

    assert run_scorer(first, ticks, len(ticks)) == run_scorer(second, ticks, len(ticks))


def test_update_many_equals_update_loop() -> None:
    ticks, _ = sp500_stream()
    looped = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)
    batched = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)

    expected = run_scorer(looped, ticks, len(ticks))
    got = [p for k in range(0, len(ticks), 97) for p in batched.update_many(ticks[k : k + 97])]

    assert got == expected
    assert batched.accuracy == looped.accuracy


def test_pickle_mid_stream_resumes_like_uninterrupted_run() -> None:
    ticks, _ = sp500_stream()
    whole = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)
    expected = whole.update_many(ticks)
    head = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, seed=SEED)

    got = head.update_many(ticks[:600])
    resumed = pickle.loads(pickle.dumps(head))
    got += resumed.update_many(ticks[600:])

    assert got == expected
    assert (resumed.accuracy, resumed.rolling_accuracy, resumed.n_labelled) == (
        whole.accuracy,
        whole.rolling_accuracy,
        whole.n_labelled,
    )


def test_update_emits_labelled_prediction_with_original_ids_and_resolving_ts_init() -> None:
    scorer = InstrumentScorer("X", horizon_ns=10, seed=0)
    [first] = scorer.update("t0", 100, 10.0, {"a": 1.0})

    [labelled, fresh] = scorer.update("t1", 115, 9.0, {"a": 2.0})

    assert first == Prediction(
        tick_id="t0",
        instrument="X",
        model="logistic",
        horizon_ns=10,
        probability_up=0.5,
        ts_event=100,
        ts_init=100,
    )
    assert labelled == Prediction(
        tick_id="t0",
        instrument="X",
        model="logistic",
        horizon_ns=10,
        probability_up=0.5,
        label=0,
        version=1,
        ts_event=100,
        ts_init=115,
    )
    assert (fresh.tick_id, fresh.version, fresh.label, fresh.ts_init) == ("t1", 0, None, 115)


def test_update_without_features_resolves_labels_but_predicts_nothing() -> None:
    scorer = InstrumentScorer("X", horizon_ns=10, seed=0)
    scorer.update("t0", 0, 10.0, {"a": 1.0})

    assert scorer.update("t1", 5, 11.0, None) == []
    assert [p.version for p in scorer.update("t2", 10, 11.0, None)] == [1]
    assert (scorer.n_labelled, scorer.n_pending, scorer.accuracy) == (1, 0, 0.0)


def test_update_learns_only_labels_known_at_event_time() -> None:
    scorer = InstrumentScorer("X", horizon_ns=10, seed=0)
    scorer.update("t0", 0, 10.0, {"a": 1.0})

    [before] = scorer.update("t1", 9, 20.0, {"a": 1.0})

    assert before.probability_up == 0.5  # the t0 label is not due before ts 10
    assert scorer.n_labelled == 0


def test_update_caller_mutating_features_does_not_change_what_is_learnt() -> None:
    features = {"a": 1.0}
    mutated = InstrumentScorer("X", horizon_ns=1, seed=0)
    clean = InstrumentScorer("X", horizon_ns=1, seed=0)
    mutated.update("t0", 0, 10.0, features)
    clean.update("t0", 0, 10.0, {"a": 1.0})

    features["a"] = -50.0

    assert mutated.update("t1", 1, 11.0, {"a": 1.0}) == clean.update("t1", 1, 11.0, {"a": 1.0})


def test_full_pending_queue_exposes_evicted_count() -> None:
    scorer = InstrumentScorer("X", horizon_ns=1_000, seed=0, max_pending=3)

    scorer.update_many([(f"t{i}", i, 10.0, {"a": float(i)}) for i in range(5)])

    assert (scorer.evicted, scorer.n_pending) == (2, 3)


def test_unknown_model_name_raises_key_error_listing_known_names() -> None:
    with pytest.raises(KeyError, match="known: logistic"):
        InstrumentScorer("X", model_name="nope", horizon_ns=1, seed=0)


def test_build_pipeline_passes_params_to_factory() -> None:
    model = build_pipeline("logistic", seed=0, learning_rate=0.2, l2=0.1)

    last = model.steps["LogisticRegression"]
    assert (last.optimizer.learning_rate, last.l2) == (0.2, 0.1)
    assert set(PIPELINES) == {"logistic"}
