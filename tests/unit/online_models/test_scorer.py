"""InstrumentScorer: predict-then-learn on delayed labels, checked against River's evaluator."""

from __future__ import annotations

import bisect
import datetime as dt
import pickle
from functools import cache
from typing import Any

import pytest
from river import compose, datasets, evaluate, metrics, stream, utils

from connectors.codec import tick_from_object
from connectors.feeds.simulator import SimulationConfig, simulate
from online_models.bar import BarBuilder
from online_models.feature import InstrumentFeatures
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
        realized_return=pytest.approx(-0.1),
        error=0.5,
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
    with pytest.raises(KeyError, match="known: bandit, ensemble, forest"):
        InstrumentScorer("X", model_name="nope", horizon_ns=1, seed=0)


def test_build_pipeline_passes_params_to_factory() -> None:
    model = build_pipeline("logistic", seed=0, learning_rate=0.2, l2=0.1)

    last = model.steps["LogisticRegression"]
    assert (last.optimizer.learning_rate, last.l2) == (0.2, 0.1)
    assert set(PIPELINES) == {
        "logistic",
        "hoeffding_tree",
        "forest",
        "linear",
        "ensemble",
        "bandit",
    }


@cache
def simulator_stream() -> tuple[TickInput, ...]:
    """4,000 simulated ticks of one instrument with the live feature set (1 s bars for ATR)."""
    config = SimulationConfig(symbols=("SIM",), seed=SEED, ticks_per_second=50.0)
    features = InstrumentFeatures()
    bars = BarBuilder("SIM", 1)
    ticks: list[TickInput] = []
    for record in simulate(config, 4_000):
        tick = tick_from_object(record, None)
        bar = bars.update(tick)
        if bar is not None:
            features.on_bar(bar)
        ticks.append((tick.tick_id, tick.ts_event, tick.price, features.update(tick)))
    return tuple(ticks)


def river_dataset(
    ticks: tuple[TickInput, ...] | list[TickInput], horizon_ns: int, *, regression: bool
) -> list[tuple[dict[str, Any], Any]]:
    """Predicted ticks whose horizon elapses in the stream, with the scorer's target rule.

    The target is the price at the first tick at/after `ts + horizon` over the price
    then: its sign (up or not) for a classifier, the return itself for a regressor.
    """
    times = [ts for _, ts, _, _ in ticks]
    dataset = []
    for _, ts, price_then, features in ticks:
        j = bisect.bisect_left(times, ts + horizon_ns)
        if j == len(ticks):
            break
        if features is None:
            continue
        forward_return = ticks[j][2] / price_then - 1.0
        y = forward_return if regression else forward_return > 0
        dataset.append(({"__ts": ts, **features}, y))
    return dataset


def river_score(
    dataset: list[tuple[dict[str, Any], Any]], pipeline: str, metric: Any, horizon_ns: int
) -> float:
    """River's own delayed progressive validation of `pipeline` on `dataset`."""
    model = compose.Discard("__ts") | build_pipeline(pipeline, seed=SEED)
    result = evaluate.progressive_val_score(dataset, model, metric, moment="__ts", delay=horizon_ns)
    return float(result.get())


def scored(
    ticks: tuple[TickInput, ...] | list[TickInput], pipeline: str, horizon_ns: int
) -> InstrumentScorer:
    """A scorer of `pipeline` fed every tick, predicting only where the label will resolve."""
    scorer = InstrumentScorer("X", model_name=pipeline, horizon_ns=horizon_ns, seed=SEED)
    last_ts = ticks[-1][1]
    for tid, ts, price, features in ticks:
        scorer.update(tid, ts, price, features if ts + horizon_ns <= last_ts else None)
    return scorer


SIM_HORIZON_NS = 2 * 10**9
STREAMS = {
    "sp500": (lambda: sp500_stream()[0], HORIZON_NS),
    "simulator": (simulator_stream, SIM_HORIZON_NS),
}
METRIC_CASES = [
    ("logistic", "accuracy", metrics.Accuracy),
    ("logistic", "log_loss", metrics.LogLoss),
    ("logistic", "roc_auc", metrics.ROCAUC),
    ("linear", "mae", metrics.MAE),
    ("linear", "rmse", metrics.RMSE),
    ("linear", "r2", metrics.R2),
]


@pytest.mark.parametrize("stream_name", sorted(STREAMS))
@pytest.mark.parametrize(
    ("pipeline", "name", "metric"), METRIC_CASES, ids=[c[1] for c in METRIC_CASES]
)
def test_every_cumulative_metric_equals_river_progressive_val_score(
    stream_name: str, pipeline: str, name: str, metric: Any
) -> None:
    make_ticks, horizon_ns = STREAMS[stream_name]
    ticks = make_ticks()
    scorer = scored(ticks, pipeline, horizon_ns)
    dataset = river_dataset(ticks, horizon_ns, regression=scorer.regression)

    expected = river_score(dataset, pipeline, metric(), horizon_ns)

    assert scorer.n_labelled == len(dataset) > 1_000
    assert scorer.metrics.values()[name] == pytest.approx(expected, abs=1e-12)


def test_rolling_metrics_equal_river_rolling_metrics_on_the_window() -> None:
    ticks = simulator_stream()
    scorer = scored(ticks, "logistic", SIM_HORIZON_NS)
    dataset = river_dataset(ticks, SIM_HORIZON_NS, regression=False)[-1_000:]
    labelled = [p for p in scored_predictions(ticks, "logistic") if p.version == 1][-1_000:]
    rolling = metrics.LogLoss()
    for (_, y), p in zip(dataset, labelled, strict=True):
        rolling.update(y, p.probability_up)

    assert scorer.metrics.values()["rolling_log_loss"] == pytest.approx(rolling.get(), abs=1e-12)


def scored_predictions(ticks: tuple[TickInput, ...], pipeline: str) -> list[Prediction]:
    """Every prediction a fresh seeded scorer of `pipeline` emits on `ticks`."""
    scorer = InstrumentScorer("X", model_name=pipeline, horizon_ns=SIM_HORIZON_NS, seed=SEED)
    return scorer.update_many(list(ticks))


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_same_seed_gives_identical_predictions_for_every_pipeline(pipeline: str) -> None:
    ticks = simulator_stream()[:1_500]

    first = scored_predictions(ticks, pipeline)

    assert first == scored_predictions(ticks, pipeline)
    assert len({p.probability_up for p in first}) > 1


def test_regressor_predictions_carry_forecast_realized_return_and_error() -> None:
    scorer = InstrumentScorer("X", model_name="linear", horizon_ns=10, seed=0)
    scorer.update("t0", 0, 10.0, {"a": 1.0})

    [labelled, _] = scorer.update("t1", 10, 11.0, {"a": 1.0})

    assert (labelled.expected_return, labelled.probability_up) == (0.0, 0.5)
    assert labelled.realized_return == pytest.approx(0.1)
    assert labelled.error == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("name", "metric"), [("accuracy", metrics.Accuracy), ("log_loss", metrics.LogLoss)]
)
def test_horizon_in_ticks_equals_river_integer_delay(name: str, metric: Any) -> None:
    ticks, _ = sp500_stream()
    k = 3
    scorer = InstrumentScorer("AAPL", horizon_ns=HORIZON_NS, horizon_ticks=k, seed=SEED)
    n = len(ticks) - k
    for i, (tid, ts, price, features) in enumerate(ticks):
        scorer.update(tid, ts, price, features if i < n else None)
    dataset = [
        (features, ticks[i + k][2] > price) for i, (_, _, price, features) in enumerate(ticks[:n])
    ]

    expected = evaluate.progressive_val_score(
        dataset, logistic_pipeline(seed=SEED), metric(), delay=k
    )

    assert scorer.n_labelled == n
    assert scorer.metrics.values()[name] == pytest.approx(expected.get(), abs=1e-12)
