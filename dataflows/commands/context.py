"""What every command shares: the working directory and the settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataflows.settings import Settings

ROOT = Path.cwd()


class _Target:
    """The run named with `hfl --run NAME` (None: the only one running, if any)."""

    name: str | None = None


def select_run(name: str | None) -> None:
    """Make commands address run `name` (`hfl --run NAME`)."""
    _Target.name = name


def base_settings() -> Settings:
    """The settings from config files and environment alone: commands that start a
    system of their own (`hfl up`, `hfl demo`, benchmarks), never another's."""
    from dataflows.settings import load_settings

    return load_settings()


def current_settings() -> Settings:
    """The settings from config files and environment, pointed at the running system.

    The system is the run named with `--run`, else the only one registered under
    `var/runs` (`dataflows.ops.registry`); an environment that names its own topic
    namespace (`HFL_KAFKA__TOPIC_PREFIX`) and no `--run` addresses that namespace as is.
    """
    settings, _ = _resolve()
    return settings


def running_settings() -> Settings:
    """`current_settings()`, but a system must run there: commands that publish to it.

    Raises:
        HflError: nothing runs (no registered run and no namespace in the environment).
    """
    settings, found = _resolve()
    if not found:
        from risk.domain.error import HflError

        msg = (
            "no running system: none is registered under var/runs (start `hfl up` or "
            "`hfl demo`), and no --run NAME or HFL_KAFKA__TOPIC_PREFIX names one"
        )
        raise HflError(msg)
    return settings


def _resolve() -> tuple[Settings, bool]:
    import os

    from dataflows.ops.registry import find_run
    from dataflows.settings import load_settings

    settings = load_settings()
    if _Target.name is None and "HFL_KAFKA__TOPIC_PREFIX" in os.environ:
        return settings, True
    record = find_run(ROOT, _Target.name)
    if record is None:
        return settings, False
    return record.apply(settings), True


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero (counts such as `--ticks`).

    >>> positive_int("3")
    3
    >>> positive_int("-5")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a whole number above 0, got '-5'
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above zero (rates, durations).

    >>> positive_float("0.5")
    0.5
    >>> positive_float("0")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: must be a number above 0, got '0'
    """
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


def client_order_id(text: str) -> str:
    """An argparse type: a client_order_id (32 lower-case hex characters).

    >>> client_order_id("d725f8f3c4f61f4de8a222e5ec403d0e")
    'd725f8f3c4f61f4de8a222e5ec403d0e'
    >>> client_order_id("deadbeef")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 'deadbeef' is not a client_order_id (32 hex characters)
    """
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a client_order_id (32 hex characters)")
    return text
