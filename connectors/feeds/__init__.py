"""Market data feeds that produce tick records: simulator, file replay, River's S&P 500 prices."""

from __future__ import annotations

from connectors.feeds.replay import FileKind, ReplayFormatError, paced, read_records
from connectors.feeds.simulator import SimulationConfig, Simulator, simulate, stamp

__all__ = [
    "FileKind",
    "ReplayFormatError",
    "SimulationConfig",
    "Simulator",
    "paced",
    "read_records",
    "simulate",
    "stamp",
]
