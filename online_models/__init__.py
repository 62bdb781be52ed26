"""Online models: incremental features, event-time bars, River pipelines and scoring.

Everything here is pure and deterministic: state advances only with the data it is fed
(`ts_event`, never the wall clock), every state object pickles for Bytewax snapshots and
stays bounded, and identical input gives identical output.

- `online_models.bar`: `BarBuilder` folds ticks into event-time OHLCV bars.
- `online_models.feature`: O(1) incremental indicators (SMA, EMA, RSI, MACD, Bollinger %b,
  ATR, realized volatility, rolling VWAP, z-score) matching TA-Lib, and `InstrumentFeatures`,
  which emits a complete feature dict per tick once every indicator is warm.
"""
