"""What every command shares: the working directory and the settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataflows.settings import Settings

ROOT = Path.cwd()


def current_settings() -> Settings:
    """The settings from config files and environment, loaded when a command needs them."""
    from dataflows.settings import load_settings

    return load_settings()


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
