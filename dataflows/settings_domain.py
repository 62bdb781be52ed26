"""Settings to domain: the one place configured values become the core's types.

Percentages become fractions, milliseconds and seconds become nanoseconds, and the
flat `Settings` tree becomes the limit, risk-model, model and broker configurations
the pure packages (`risk`, `online_models`) and the paper broker take. The flows call
these rather than each converting units its own way.

Settings left null derive from the data's time scale (`settings.derive_time_scale`,
which `load_settings` applies); a `Settings` built in code without it gets the
tick-data scale here (`risk.timescale.TICK`).
"""

from __future__ import annotations

from connectors.gateway.paper import PaperBrokerConfig
from dataflows.settings import (
    AccountLimitSettings,
    LimitSettings,
    RiskSettings,
    Settings,
    derive_time_scale,
)
from online_models.champion import ModelSetConfig, PromotionRule
from online_models.drift import DriftConfig
from online_models.instrument import ModelSpec
from online_models.registry import ModelConfig
from online_models.signal import SignalConfig, SignalEngineConfig
from online_models.signal_multifactor import MultiFactorConfig
from risk.limit import AccountLimits, RiskLimits
from risk.monitor import DEFAULT_SCENARIOS, RiskModelConfig, StressScenario
from risk.timescale import TICK

_NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


def risk_limits(limits: LimitSettings) -> RiskLimits:
    """Translate configured limits into the gate's limit type."""
    return RiskLimits(
        max_order_quantity=limits.max_order_quantity,
        max_order_notional=limits.max_order_notional,
        max_position=limits.max_position,
        max_gross_exposure=limits.max_gross_exposure,
        price_collar_pct=limits.price_collar_pct / 100,
        max_reference_age_ns=(
            TICK.reference_age_ns
            if limits.max_reference_age_ms is None
            else limits.max_reference_age_ms * _NS_PER_MS
        ),
        max_concentration=limits.max_concentration_pct / 100,
        group=limits.group,
        max_volatility=limits.max_volatility_pct / 100,
        scale_on_volatility=limits.scale_on_volatility,
        max_correlation=limits.max_correlation,
        time_in_force_ns=(
            TICK.time_in_force_ns
            if limits.time_in_force_ms is None
            else limits.time_in_force_ms * _NS_PER_MS
        ),
    )


def account_limits(limits: AccountLimitSettings) -> AccountLimits:
    """Translate configured account-wide limits (percentages) into the gate's type."""
    return AccountLimits(
        max_open_orders=limits.max_open_orders,
        max_net_exposure=limits.max_net_exposure,
        max_group_concentration=limits.max_group_concentration_pct / 100,
        var_budget=limits.var_budget_pct / 100,
        cvar_budget=limits.cvar_budget_pct / 100,
        max_beta=limits.max_beta,
        drawdown_soft=limits.drawdown_soft_pct / 100,
        drawdown_hard=limits.drawdown_hard_pct / 100,
        daily_loss=limits.daily_loss_pct / 100,
        max_orders_per_window=limits.max_orders_per_window,
        order_window_ns=limits.order_window_ms * _NS_PER_MS,
        max_fills_without_human=limits.max_fills_without_human,
    )


def risk_model(risk: RiskSettings) -> RiskModelConfig:
    """The portfolio risk model: sampling, schedule and stress scenarios."""
    model = risk.model
    extra = tuple(
        StressScenario(
            name=name,
            market_move=shocks.get("market", 0.0) / 100,
            shocks={k: v / 100 for k, v in shocks.items() if k != "market"},
        )
        for name, shocks in risk.stress_scenarios.items()
    )
    return RiskModelConfig(
        window=model.window,
        min_samples=model.min_samples,
        sample_interval_ns=(
            TICK.sample_ns
            if model.sample_interval_ms is None
            else model.sample_interval_ms * _NS_PER_MS
        ),
        periods_per_day=(
            TICK.periods_per_day if model.periods_per_day is None else model.periods_per_day
        ),
        confidence=model.confidence,
        ewma_decay=model.ewma_decay,
        recompute_interval_ns=(
            TICK.recompute_ns
            if model.recompute_interval_ms is None
            else model.recompute_interval_ms * _NS_PER_MS
        ),
        market_proxy=model.market_proxy,
        scenarios=DEFAULT_SCENARIOS + extra,
    )


def model_config(settings: Settings, name: str) -> ModelConfig:
    """The configured model `name` (a key of `model.pipelines`)."""
    pipeline = settings.model.pipelines[name]
    return ModelConfig(
        name=name,
        factory=pipeline.factory,
        params=pipeline.params,
        sample_every=pipeline.sample_every,
        scope=pipeline.scope,
    )


def model_spec(settings: Settings, code_version: str = "unknown") -> ModelSpec:
    """The models and signal configuration every instrument pipeline is built from."""
    model = derive_time_scale(settings).model
    promotion, drift = model.promotion, model.drift
    return ModelSpec(
        models=ModelSetConfig(
            champion=model_config(settings, model.pipeline),
            challengers=tuple(model_config(settings, name) for name in model.challengers),
            seed=model.seed,
            horizon_ns=int(model.horizon_s * NS_PER_S),
            horizon_ticks=model.horizon_ticks,
            max_pending=model.max_pending,
            rolling_window=model.rolling_window,
            metrics_interval_ns=int((model.metrics_interval_s or 0) * NS_PER_S),
            promotion=PromotionRule(
                enabled=promotion.enabled, min_labels=promotion.min_labels, margin=promotion.margin
            ),
            drift=DriftConfig(
                watch_error=drift.watch_error,
                error_delta=drift.error_delta,
                features=drift.features,
                feature_threshold=drift.feature_threshold,
                feature_min_instances=drift.feature_min_instances,
            ),
            code_version=code_version,
            checkpoint_interval_ns=int((model.checkpoint_interval_s or 0) * NS_PER_S),
            checkpoint_max_bytes=model.checkpoint_max_bytes,
            mini_batch_ticks=model.mini_batch_ticks,
        ),
        signal=signal_config(settings),
    )


def signal_config(settings: Settings) -> SignalEngineConfig:
    """The configured signal engine's configuration (`model.signal.engine`); the
    multi-factor engine's cost is the gateway's one-way fee + slippage."""
    settings = derive_time_scale(settings)
    model, signal = settings.model, settings.model.signal
    if signal.engine == "multifactor":
        return MultiFactorConfig(
            cost_bps=settings.gateway.fee_bps + settings.gateway.slippage_bps,
            edge_multiple=signal.edge_multiple,
            horizon_ticks=signal.horizon_ticks,
            momentum_ticks=signal.momentum_ticks,
            mean_ticks=signal.mean_ticks,
            vol_short_ticks=signal.vol_short_ticks,
            vol_long_ticks=signal.vol_long_ticks,
            weights=tuple(signal.weights) or None,
            forgetting=signal.forgetting,
            ridge=signal.ridge,
            refit_ticks=signal.refit_ticks,
            min_learned=signal.min_learned,
            min_labelled=model.min_labelled or 0,
            min_hold_ticks=signal.min_hold_ticks,
            turnover_window_ticks=signal.turnover_window_ticks,
            max_turnover=signal.max_turnover,
        )
    return SignalConfig(
        enter_long=model.enter_long,
        exit_long=model.exit_long,
        enter_short=model.enter_short,
        exit_short=model.exit_short,
        min_labelled=model.min_labelled or 0,
    )


def paper_config(settings: Settings) -> PaperBrokerConfig:
    """The paper broker's latency, slippage, fees and tick buffer from settings."""
    gateway = derive_time_scale(settings).gateway
    return PaperBrokerConfig(
        latency_ns=int(gateway.latency_ms * 1_000_000),
        slippage_bps=gateway.slippage_bps,
        fee_bps=gateway.fee_bps,
        tick_buffer_ns=int((gateway.tick_buffer_s or 0) * 1_000_000_000),
        max_buffered_ticks=gateway.max_buffered_ticks,
    )
