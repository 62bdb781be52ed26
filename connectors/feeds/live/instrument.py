"""Venue symbol <-> our instrument, with tick and lot size, from configuration.

Connectors take explicit arguments: the caller parses the YAML (config/feeds.yaml) and
hands the mapping in; every problem is reported at once in one `ConfigError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from risk.domain.error import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueInstrument:
    """One instrument as a venue lists it."""

    venue: str
    symbol: str
    instrument: str
    tick_size: float
    lot_size: float


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueConfig:
    """Where a venue's public stream is and which of its instruments we take."""

    venue: str
    url: str
    instruments: tuple[VenueInstrument, ...]

    def by_symbol(self) -> dict[str, VenueInstrument]:
        """Map the venue's own symbol to its instrument."""
        return {item.symbol: item for item in self.instruments}

    def symbols(self, instruments: frozenset[str] | None = None) -> list[str]:
        """The venue symbols of `instruments` (all configured ones when None)."""
        return [
            item.symbol
            for item in self.instruments
            if instruments is None or item.instrument in instruments
        ]


def _positive(value: Any, where: str, problems: list[str]) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        problems.append(f"{where}: must be a positive number, got {value!r}")
        return 1.0
    return float(value)


def venues_from_mapping(mapping: Mapping[str, Any]) -> dict[str, VenueConfig]:
    """Build every venue's configuration from the `live.venues` mapping.

    >>> cfg = venues_from_mapping({"kraken": {"url": "wss://x", "instruments": {
    ...     "BTC-USD": {"symbol": "BTC/USD", "tick_size": 0.1, "lot_size": 1e-8}}}})
    >>> cfg["kraken"].by_symbol()["BTC/USD"].instrument
    'BTC-USD'
    >>> venues_from_mapping({"kraken": {"instruments": {"X": {"symbol": ""}}}})
    Traceback (most recent call last):
    ...
    risk.domain.error.ConfigError: live.venues: 4 problems: kraken.url: missing; ...
    """
    problems: list[str] = []
    venues: dict[str, VenueConfig] = {}
    for venue, body in mapping.items():
        if not isinstance(body, Mapping):
            problems.append(f"{venue}: must be a mapping")
            continue
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            problems.append(f"{venue}.url: missing" if url is None else f"{venue}.url: {url!r}")
        items = []
        seen: set[str] = set()
        for instrument, spec in (body.get("instruments") or {}).items():
            where = f"{venue}.instruments.{instrument}"
            if not isinstance(spec, Mapping):
                problems.append(f"{where}: must be a mapping")
                continue
            symbol = spec.get("symbol")
            if not isinstance(symbol, str) or not symbol:
                problems.append(f"{where}.symbol: must be a non-empty string")
                symbol = ""
            elif symbol in seen:
                problems.append(f"{where}.symbol: {symbol} mapped twice")
            seen.add(symbol)
            items.append(
                VenueInstrument(
                    venue=venue,
                    symbol=symbol,
                    instrument=instrument,
                    tick_size=_positive(spec.get("tick_size"), f"{where}.tick_size", problems),
                    lot_size=_positive(spec.get("lot_size"), f"{where}.lot_size", problems),
                )
            )
        venues[venue] = VenueConfig(venue=venue, url=str(url), instruments=tuple(items))
    if problems:
        msg = f"live.venues: {len(problems)} problems: " + "; ".join(problems)
        raise ConfigError(msg)
    return venues
