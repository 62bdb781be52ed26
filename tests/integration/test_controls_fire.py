"""Every control of the risk gate fires in a real run, on the real broker.

Scripted bounded runs of the trading and gateway flows (`python -m bytewax.run`
processes with recovery on), one per module fixture (and parameter), whose input
makes the controls fire; one test per control then finds its denial, state change or
order event, with the detail that names its limit. Every run is about 40 s of event
time of simulated ticks; orders rest 3 s at the paper broker (so flips meet them):

- `per_instrument` (17 instruments): one instrument per control, its own limits set
  per instrument (`risk.per_instrument.<name>`), or an operator command (`hfl kill`,
  `hfl reduce`, `hfl limits set`) or an alert on `hfl.alerts` addressed to it before
  the run; free instruments trade alongside so there is a book to correlate with.
  The instrument `collar` trades 10 % higher in every other second of event time, so
  its signals are priced beyond the 5 % collar from the last 1 s bar's close. The
  time in force, self-match and zero quantity fire here too.
- `account_wide`: order rate, open orders and net exposure deny from the first
  seconds; fees of 2 % a fill then draw the account down past the soft limit.
- `halt` (2 runs): a hard drawdown, and the repeated-execution throttle, HALT it.
- `budget` (3 runs): the post-trade beta, VaR and CVaR budgets, each alone tiny (one
  run each: the first budget over its limit names the denial).

Not here, because no real run can reach them (each is unit-tested in tests/unit/risk):
a duplicate client order id (the codec derives a tick's id from its instrument, seq
and time, and a repeated seq is dead-lettered, so no signal id repeats) and a missing
or stale reference price (every signal carries its own validated tick price and time).
Drift escalating an instrument fires in tests/integration/test_drift_risk.py (it needs
12,000 calm ticks before the regime change).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Producer
from support.alerts import make_alert
from test_end_to_end import hfl, publish, run_env, run_flows

from connectors import topic
from connectors.codec import encode
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from risk.domain import Alert

pytestmark = pytest.mark.integration

NS_PER_S = 1_000_000_000
TICKS_PER_S_EACH = 30.0
EVENT_S = 40
Records = list[dict[str, object]]

# Per-instrument limits (`risk.per_instrument`, names lower case as Settings keys are).
LIMITS = {
    "qty": {"MAX_ORDER_QUANTITY": "1"},
    "notional": {"MAX_ORDER_NOTIONAL": "50"},
    "gross": {"MAX_GROSS_EXPOSURE": "50"},
    "conc": {"MAX_CONCENTRATION_PCT": "0.01"},
    "grp": {"GROUP": "tech"},
    "vol": {"MAX_VOLATILITY_PCT": "0.001"},
    "corr": {"MAX_CORRELATION": "0.000000001"},
    "tif": {"TIME_IN_FORCE_MS": "1"},
}
COMMANDED = ("kill", "reduce", "pos")
ALERTED = {"stale": "stale_data", "dlvr": "delivery_failure"}
FREE = ("free1", "free2", "free3")
INSTRUMENTS = (*LIMITS, *COMMANDED, *ALERTED, "collar", *FREE)


@dataclass(frozen=True)
class RunOutput:
    """What a run wrote: every topic the gate writes, progress markers aside."""

    decisions: Records
    risk_events: Records
    order_events: Records
    orders: Records

    def denials(self, reason: str, instrument: str | None = None) -> Records:
        return [
            d
            for d in self.decisions
            if d.get("reason") == reason and instrument in (None, d["instrument"])
        ]


def scripted_ticks(instruments: tuple[str, ...], start_ns: int) -> list[dict[str, object]]:
    """EVENT_S seconds of simulated ticks; `collar` 10 % higher in every odd second,
    `corr` at the price of `free1`'s last tick (correlated with the book when free1 is
    in it, and signalled the same way)."""
    config = SimulationConfig(
        symbols=instruments,
        seed=11,
        ticks_per_second=TICKS_PER_S_EACH * len(instruments),
        start_ns=start_ns,
    )
    ticks = list(simulate(config, int(EVENT_S * TICKS_PER_S_EACH * len(instruments))))
    last_free: dict[str, object] = {}
    for tick in ticks:
        second = (int(tick["ts_event"]) - start_ns) // NS_PER_S  # type: ignore[call-overload]
        if tick["instrument"] == "collar" and second % 2:
            for field in ("price", "bid", "ask"):
                if tick.get(field) is not None:
                    tick[field] = round(float(tick[field]) * 1.10, 2)  # type: ignore[arg-type]
        elif tick["instrument"] == FREE[0]:
            last_free = {field: tick.get(field) for field in ("price", "bid", "ask")}
        elif tick["instrument"] == "corr" and last_free:
            tick.update(last_free)  # moves with free1, so it trades as free1 does
    return ticks


def run(
    kafka_bootstrap: str,
    run_dir: Path,
    instruments: tuple[str, ...],
    *,
    env_extra: dict[str, str],
    before: tuple[tuple[str, ...], ...] = (),
    alerts: tuple[Alert, ...] = (),
) -> RunOutput:
    """One bounded run: `before` (hfl commands) and `alerts` first, then the ticks."""
    prefix = f"fire-{uuid.uuid4().hex[:8]}."
    env = run_env(kafka_bootstrap, prefix, run_dir / "unused-clickhouse") | {
        "HFL_TRADING__INSTRUMENTS": ",".join(instruments),
        "HFL_RISK__MODEL__MIN_SAMPLES": "10",
        # Orders rest 3 s of event time before they can trade: flips meet them (self-match).
        "HFL_GATEWAY__LATENCY_MS": "3000",
        # The commands are signed before the flows start, which may take a while.
        "HFL_SECURITY__SIGN_WINDOW_S": "600",
        **env_extra,
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    for command in before:
        hfl(env, *command, "--no-wait")
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for item in alerts:
        producer.produce(prefix + topic.ALERTS, encode(item))
    assert producer.flush(30) == 0
    start_ns = time.time_ns() - 300 * NS_PER_S
    lines = [encode(tick) for tick in scripted_ticks(instruments, start_ns)]
    publish(run_dir, lines, env)
    run_flows(("trading", "gateway"), env, run_dir)

    def records(name: str) -> Records:
        return [r for r in read_log(kafka_bootstrap, prefix + name) if "progress_id" not in r]

    return RunOutput(
        decisions=records(topic.DECISIONS),
        risk_events=records(topic.RISK_EVENTS),
        order_events=records(topic.ORDER_EVENTS),
        orders=records(topic.ORDERS),
    )


@pytest.fixture(scope="module")
def per_instrument(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    env = {
        f"HFL_RISK__PER_INSTRUMENT__{name.upper()}__{key}": value
        for name, limits in LIMITS.items()
        for key, value in limits.items()
    } | {"HFL_RISK__ACCOUNT__MAX_GROUP_CONCENTRATION_PCT": "0.001"}
    before = (
        ("kill", "--instrument", "kill", "--reason", "e2e kill one instrument"),
        ("reduce", "--instrument", "reduce", "--reason", "e2e reduce one instrument"),
        ("limits", "set", "--instrument", "pos", "--max-position", "1", "--reason", "e2e"),
    )
    now = time.time_ns()
    alerts = tuple(make_alert(name, subject, now) for subject, name in ALERTED.items())
    return run(
        kafka_bootstrap,
        tmp_path_factory.mktemp("per-instrument"),
        INSTRUMENTS,
        env_extra=env,
        before=before,
        alerts=alerts,
    )


def account_run(
    kafka_bootstrap: str, run_dir: Path, limits: dict[str, str], **env: str
) -> RunOutput:
    """A run of the free instruments under account-wide `limits` (`risk.account`)."""
    env |= {f"HFL_RISK__ACCOUNT__{key}": value for key, value in limits.items()}
    return run(kafka_bootstrap, run_dir, FREE, env_extra=env)


@pytest.fixture(scope="module")
def account_wide(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    """Order flow and exposure limits deny from the first seconds; fees of 2 % a fill
    then draw the account down past the soft limit (REDUCING)."""
    limits = {
        "MAX_ORDERS_PER_WINDOW": "1",
        "ORDER_WINDOW_MS": "1000",
        "MAX_OPEN_ORDERS": "2",
        "MAX_NET_EXPOSURE": "12000",
        "DRAWDOWN_SOFT_PCT": "0.02",
        "DRAWDOWN_HARD_PCT": "100",
        "DAILY_LOSS_PCT": "100",
    }
    return account_run(
        kafka_bootstrap,
        tmp_path_factory.mktemp("account-wide"),
        limits,
        HFL_GATEWAY__FEE_BPS="200",
    )


@pytest.fixture(scope="module", params=["drawdown", "execution_throttle"])
def halt(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, RunOutput]:
    """The account HALTED by a hard drawdown (fees of 2 % a fill) or by its third fill
    without an operator command (the repeated-execution throttle)."""
    trigger = request.param
    limits = (
        {"DRAWDOWN_SOFT_PCT": "0.01", "DRAWDOWN_HARD_PCT": "0.01", "DAILY_LOSS_PCT": "100"}
        if trigger == "drawdown"
        else {"MAX_FILLS_WITHOUT_HUMAN": "3"}
    )
    output = account_run(
        kafka_bootstrap, tmp_path_factory.mktemp(trigger), limits, HFL_GATEWAY__FEE_BPS="200"
    )
    return trigger, output


@pytest.fixture(scope="module", params=["BETA", "VAR_BUDGET", "CVAR_BUDGET"])
def budget(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, RunOutput]:
    """One run per post-trade budget, that budget tiny, the ones checked before it huge
    (beta, then VaR, then CVaR)."""
    tiny = request.param
    order = ["BETA", "VAR_BUDGET", "CVAR_BUDGET"]
    limits = {
        ("MAX_BETA" if name == "BETA" else f"{name}_PCT"): ("0.0001" if name == tiny else "1000000")
        for name in order[: order.index(tiny) + 1]
    }
    output = account_run(kafka_bootstrap, tmp_path_factory.mktemp(tiny.lower()), limits)
    return tiny.lower(), output


# instrument, denial reason, what its detail says (a regular expression)
PER_INSTRUMENT = [
    ("kill", "kill_switch", r"^kill switch is on$"),
    ("reduce", "reduce_only", r"not reduce the position \(reducing since reduce\)$"),
    ("stale", "reduce_only", r"not reduce the position \(reducing since stale_data\)$"),
    ("dlvr", "halted", r"^halted by delivery_failure$"),
    ("collar", "price_collar", r"^reference [\d.]+ is \d+\.\d\d% from the last market price "),
    ("qty", "max_order_quantity", r"^quantity \d+ > limit 1$"),
    ("notional", "max_order_notional", r"^notional [\d.]+ > limit 50$"),
    ("pos", "max_position", r"^worst-case position -?\d+ exceeds limit ±1$"),
    ("gross", "max_gross_exposure", r"^gross exposure [\d.]+ > limit 50$"),
    ("conc", "concentration", r"^position is [\d.]+% of equity > 0\.01%$"),
    ("grp", "group_concentration", r"^group tech is [\d.]+% of equity > 0\.00%$"),
    ("vol", "volatility", r"^realised volatility [\d.]+% > limit 0\.00%$"),
    # Any instrument: whether an order adds to the book's correlation depends on the
    # book at that moment, which fill timing moves (see risk.gate); `corr` (limit 1e-9,
    # moving with free1) and the free ones (0.3) each get many chances.
    (None, "correlation", r"^correlation with the book -?[\d.]+ > (1e-09|0\.3)$"),
    (None, "self_match", r"^would cross our own working order on the other side$"),
    (None, "zero_quantity", r"^quantity 0 <= 0$"),
]
ACCOUNT_WIDE = [
    ("order_rate", r"^1 orders already approved in the last 1000000000 ns$"),
    ("max_open_orders", r"^\d+ working orders >= limit 2$"),
    ("max_net_exposure", r"^net exposure -?[\d.]+ beyond ±12000"),
    ("reduce_only", r"not reduce the position \(reducing since drawdown\)$"),
]
BUDGET_DETAIL = {
    "beta": r"^post-trade beta [\d.]+ > budget 0\.0001$",
    "var_budget": r"^post-trade (historical|EWMA) VaR [\d.]+ > budget 1e-06$",
    "cvar_budget": r"^post-trade (historical|EWMA) CVaR [\d.]+ > budget 1e-06$",
}


def assert_fired(output: RunOutput, reason: str, instrument: str | None, detail: str) -> None:
    """Some decision was denied for `reason` (on `instrument`), each with `detail`."""
    denied = output.denials(reason, instrument)
    seen = sorted({(d["instrument"], d.get("reason", "approved")) for d in output.decisions})
    assert denied, f"no {reason} denial on {instrument or 'any instrument'}; decisions: {seen}"
    assert all(re.search(detail, str(d["detail"])) for d in denied), denied[:3]


@pytest.mark.parametrize(
    ("instrument", "reason", "detail"), PER_INSTRUMENT, ids=[c[1] for c in PER_INSTRUMENT]
)
def test_per_instrument_control_fires(
    per_instrument: RunOutput, instrument: str | None, reason: str, detail: str
) -> None:
    assert_fired(per_instrument, reason, instrument, detail)


@pytest.mark.parametrize(("reason", "detail"), ACCOUNT_WIDE, ids=[c[0] for c in ACCOUNT_WIDE])
def test_account_wide_control_fires(account_wide: RunOutput, reason: str, detail: str) -> None:
    assert_fired(account_wide, reason, None, detail)


def test_drawdown_makes_the_account_reducing(account_wide: RunOutput) -> None:
    changes = [(e["instrument"], e["state"], e["trigger"]) for e in account_wide.risk_events]
    assert changes == [("", "reducing", "drawdown")]


def test_halting_trigger_fires(halt: tuple[str, RunOutput]) -> None:
    trigger, output = halt
    assert_fired(output, "halted", None, f"^halted by {trigger}$")
    changes = [(e["instrument"], e["state"], e["trigger"]) for e in output.risk_events]
    assert changes == [("", "halted", trigger)]


def test_post_trade_budget_fires(budget: tuple[str, RunOutput]) -> None:
    reason, output = budget
    assert_fired(output, reason, None, BUDGET_DETAIL[reason])


def test_time_in_force_expires_orders(per_instrument: RunOutput) -> None:
    sent = {o["client_order_id"]: o for o in per_instrument.orders if o["instrument"] == "tif"}
    expired = [
        e
        for e in per_instrument.order_events
        if e["kind"] == "expired" and e["instrument"] == "tif"
    ]
    assert sent and expired
    for event in expired:
        assert int(event["ts_event"]) == int(sent[event["client_order_id"]]["expire_ns"])  # type: ignore[call-overload]


def test_the_controls_restrict_only_their_instruments(per_instrument: RunOutput) -> None:
    approved = {d["instrument"] for d in per_instrument.decisions if d["outcome"] == "approved"}
    assert set(FREE) <= approved
    assert not approved & {"kill", "qty", "notional", "gross", "conc", "grp", "dlvr"}
    states = {(e["instrument"], e["state"]) for e in per_instrument.risk_events}
    assert {("kill", "halted"), ("reduce", "reducing"), ("stale", "reducing")} <= states
    assert ("dlvr", "halted") in states
