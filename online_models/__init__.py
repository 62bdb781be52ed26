"""Online models: incremental features, event-time bars, River pipelines and scoring.

Everything here is pure and deterministic: state advances only with the data it is fed
(`ts_event`, never the wall clock), every state object pickles for Bytewax snapshots and
stays bounded, and identical input gives identical output.

- `online_models.bar`: `BarBuilder` folds ticks into event-time OHLCV bars.
- `online_models.feature`: O(1) incremental indicators (SMA, EMA, RSI, MACD, Bollinger %b,
  ATR, realized volatility, rolling VWAP, z-score) matching TA-Lib, and `InstrumentFeatures`,
  which emits a complete feature dict per tick once every indicator is warm.
- `online_models.pipeline`: River pipeline factories (logistic, Hoeffding tree, forest,
  linear regression, EWA ensemble, learning-rate bandit); `online_models.minibatch` the
  `learn_many`/`predict_many` path.
- `online_models.label`, `online_models.scorer`, `online_models.evaluation`: delayed
  event-time labels, predict-then-learn scoring and River's prequential metrics.
- `online_models.champion`: champion and shadow challengers per instrument (promotion,
  rollback); `online_models.drift` drift detectors; `online_models.registry` versions.
"""
