"""What every command shares: the working directory and the settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataflows.settings import Settings

ROOT = Path.cwd()


def current_settings() -> Settings:
    """The settings from config files and environment, loaded when a command needs them."""
    from dataflows.settings import load_settings

    return load_settings()
