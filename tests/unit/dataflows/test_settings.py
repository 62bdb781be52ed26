"""Settings: YAML plus HFL_* environment, every problem reported at once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from dataflows.settings import Secret, load_settings
from risk.domain.enums import TradingState
from risk.domain.error import ConfigError

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_load_settings_shipped_config_is_valid() -> None:
    settings = load_settings(CONFIG, env={})

    assert settings.trading.account == "paper-1"
    assert settings.risk.limits.max_position == Decimal("5000")
    assert settings.clickhouse.url.startswith("chdb://")


def test_load_settings_environment_overrides_yaml() -> None:
    settings = load_settings(
        CONFIG,
        env={
            "HFL_KAFKA__BATCH_SIZE": "17",
            "HFL_TRADING__INSTRUMENTS": "AAA,BBB",
            "HFL_RISK__LIMITS__MAX_POSITION": "12.5",
            "HFL_CLICKHOUSE_URL": "http://user:pw@127.0.0.1:8123/db",
        },
    )

    assert settings.kafka.batch_size == 17
    assert settings.trading.instruments == ("AAA", "BBB")
    assert settings.risk.limits.max_position == Decimal("12.5")
    assert settings.clickhouse.url.reveal() == "http://user:pw@127.0.0.1:8123/db"


def test_load_settings_lists_every_invalid_field_in_one_error(tmp_path: Path) -> None:
    (tmp_path / "trading.yaml").write_text("kafka:\n  batch_size: many\nnonsense: 1\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, env={"HFL_RISK__LIMITS__MAX_POSITION": "lots"})

    message = str(caught.value)
    assert "kafka.batch_size" in message
    assert "risk.limits.max_position" in message
    assert "nonsense: unknown setting" in message


def test_load_settings_trading_state_actions_parse_and_bad_ones_are_listed(
    tmp_path: Path,
) -> None:
    (tmp_path / "risk.yaml").write_text(
        "risk:\n  drift_action: null\n  alert_actions:\n    lag: halted\n    bad: panic\n"
    )

    with pytest.raises(ConfigError, match=r"risk.alert_actions.bad: 'panic'"):
        load_settings(tmp_path, env={})
    (tmp_path / "risk.yaml").write_text("risk:\n  drift_action: null\n")
    settings = load_settings(tmp_path, env={})
    assert settings.risk.drift_action is None
    assert settings.risk.alert_actions["delivery_failure"] is TradingState.HALTED


def test_secret_never_shows_in_repr() -> None:
    settings = load_settings(CONFIG, env={"HFL_CLICKHOUSE_URL": "http://u:hunter2@h:1/d"})

    assert "hunter2" not in repr(settings)
    assert repr(Secret("x")) == "***"
