"""Secrets in settings: masked in the runs row, read from *_FILE variables, never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataflows.settings import load_settings, masked, secret_values
from risk.domain.error import ConfigError
from risk.redact import redact_text, redact_url

ROOT = Path(__file__).resolve().parents[3]


def test_masked_settings_show_no_secret(tmp_path: Path) -> None:
    env = {
        "HFL_CLICKHOUSE_URL": "http://hfl_persist:ch-pass-123@ch:8123/hfl",
        "HFL_API_KEY": "hfl.k.s.secret-token-456",
        "HFL_KAFKA__SECURITY__PASSWORD": "kafka-pass-789",
        "HFL_DASHBOARD__SQL_URL": "http://hfl_sql:sql-pass-000@ch:8123/hfl",
    }
    settings = load_settings(ROOT / "config", env=env)
    text = json.dumps(masked(settings), default=str)
    for secret in ("ch-pass-123", "secret-token-456", "kafka-pass-789", "sql-pass-000"):
        assert secret not in text
        assert secret not in repr(settings)
    assert set(secret_values(settings)) >= {env["HFL_API_KEY"], "kafka-pass-789"}


def test_secret_file_variables_fill_secret_settings_only(tmp_path: Path) -> None:
    (tmp_path / "kafka").write_text("from-a-file\n")
    (tmp_path / "key").write_text("hfl.id.salt.secret\n")
    env = {
        "HFL_KAFKA__SECURITY__PASSWORD_FILE": str(tmp_path / "kafka"),
        "HFL_API_KEY_FILE": str(tmp_path / "key"),
        "HFL_SECURITY__KEYS_FILE": str(tmp_path / "keys.json"),  # a path setting, kept as is
    }
    settings = load_settings(ROOT / "config", env=env)
    assert settings.kafka.security.password.reveal() == "from-a-file"
    assert settings.security.api_key.reveal() == "hfl.id.salt.secret"
    assert settings.security.keys_file == str(tmp_path / "keys.json")


def test_unreadable_secret_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="HFL_API_KEY_FILE: cannot read"):
        load_settings(ROOT / "config", env={"HFL_API_KEY_FILE": str(tmp_path / "missing")})


def test_sasl_without_password_is_a_config_error() -> None:
    env = {"HFL_KAFKA__SECURITY__PROTOCOL": "SASL_PLAINTEXT", "HFL_KAFKA__SECURITY__USERNAME": "u"}
    with pytest.raises(ConfigError, match="SASL needs a username and a password"):
        load_settings(ROOT / "config", env=env)


def test_urls_with_passwords_are_masked_in_text() -> None:
    message = "cannot reach http://hfl:pw-1@ch:8123/hfl (timeout)"
    assert redact_text(message) == "cannot reach http://hfl:***@ch:8123/hfl (timeout)"
    assert redact_url("https://u:p@h:8443/db") == "https://u:***@h:8443/db"
