"""Every command validates its arguments: one line, exit 2, never a traceback."""

from __future__ import annotations

import pytest

from dataflows.commands import main


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["demo", "--ticks", "-5"], "--ticks: must be a whole number above 0, got '-5'"),
        (["demo", "--ticks", "0"], "--ticks: must be a whole number above 0, got '0'"),
        (["demo", "--rate", "0"], "--rate: must be a number above 0, got '0'"),
        (["demo", "--rate", "nan"], "--rate: must be a number above 0, got 'nan'"),
        (["feed", "simulate", "--duration", "-1"], "--duration: must be a number above 0"),
        (["trail", "deadbeef"], "'deadbeef' is not a client_order_id (32 hex characters)"),
    ],
)
def test_invalid_argument_is_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1  # no usage block: `--help` has it
    assert says in err
    assert err.startswith(f"hfl {args[0]}") and ": error: " in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["models", "show", "nosuchmodel"], "hfl models: no model named 'nosuchmodel'"),
        (["models", "list", "--instrument", "ZZZ"], "hfl models: no instrument 'ZZZ' is traded"),
    ],
)
def test_names_that_must_exist_are_checked(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(says)
    assert len(err.strip().splitlines()) == 1


def test_one_broker_setting_moves_server_and_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataflows.settings import load_settings

    monkeypatch.delenv("HFL_KAFKA__BOOTSTRAP", raising=False)
    settings = load_settings(env={"HFL_BROKER__PORT": "19555"})
    assert settings.broker.port == 19555
    assert settings.kafka.bootstrap == "127.0.0.1:19555"
    explicit = load_settings(env={"HFL_BROKER__PORT": "19555", "HFL_KAFKA__BOOTSTRAP": "h:1"})
    assert explicit.kafka.bootstrap == "h:1"
