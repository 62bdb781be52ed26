"""Live public market data from real venues over websockets, normalised to tick records.

One module per venue (`binance`, `coinbase`, `kraken`) turns that venue's documented wire
format into `VenueTick`s; `connection` keeps one hardened connection per venue
(heartbeats, stale detection, reconnect with backoff and jitter, resubscription, a circuit
breaker, gap and duplicate checks, a bounded queue); `venue_server` is a local stand-in
venue that tests and benchmarks connect the real client to.
"""

from __future__ import annotations
