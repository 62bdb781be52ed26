"""A local stand-in for the venues' public REST market-data APIs, on 127.0.0.1.

It answers the real ccxt client (whose API URLs are pointed here) in each venue's own
wire format: the market lists are the venues' documentation examples stored under
`tests/fixtures/venues/rest/`, and the candles are generated deterministically per
(venue, symbol, minute) in the documented array layouts:

- Binance spot `GET /api/v3/klines` (12-field arrays, prices as strings, `limit` ≤ 1000,
  `startTime`/`endTime` in ms) and `GET /api/v3/exchangeInfo`;
- Coinbase Exchange `GET /products/{id}/candles` (`[time, low, high, open, close,
  volume]`, newest first, at most 300, `start`/`end` ISO 8601) and `GET /products`;
- Coinbase Exchange `GET /products/{id}/trades` (`after` = a trade id: the trades below it,
  newest first, at most 1000; `time`, `trade_id`, `price`, `size`, `side`), the REST
  refill of a websocket trade gap;
- Kraken `GET /0/public/OHLC` (`{"error": [], "result": {PAIR: [[time, o, h, l, c, vwap,
  volume, count]], "last": t}}`; like the venue, only the latest 720 intervals are ever
  served, filtered by `since`) and `GET /0/public/AssetPairs`.

Faults a test asks for: a delay per request, and a venue-shaped rate-limit answer for
every `throttle_every`-th candle request (Binance HTTP 429 code -1003, Coinbase HTTP 429,
Kraken HTTP 200 with `EAPI:Rate limit exceeded`). Nothing here reaches the internet.

`python -m connectors.feeds.history.rest_server` serves until stopped and prints its URL.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import blake2b
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "venues" / "rest"
MINUTE_MS = 60_000
_BASE_PRICE = {"BTC": 30_000.0, "XBT": 30_000.0, "ETH": 2_000.0}
_BINANCE_INTERVALS = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "1d": 1440}
# Kraken's AssetPairs keys and altnames both name a pair in requests.
_KRAKEN_PAIRS = {
    "XBTUSD": "XXBTZUSD",
    "XXBTZUSD": "XXBTZUSD",
    "ETHUSD": "XETHZUSD",
    "XETHZUSD": "XETHZUSD",
}
KRAKEN_MAX_CANDLES = 720


def candle(venue: str, symbol: str, open_ms: int, minutes: int = 1) -> tuple[float, ...]:
    """The (open, high, low, close, volume, trades) of one candle, the same on every call."""
    base = next((p for asset, p in _BASE_PRICE.items() if asset in symbol.upper()), 100.0)

    def price(ms: int) -> float:
        step = ms // MINUTE_MS
        noise = blake2b(f"{venue}:{symbol}:{step}".encode(), digest_size=4).digest()
        wiggle = int.from_bytes(noise, "big") / 2**32 - 0.5
        return base * math.exp(0.02 * math.sin(step / 97.0) + 0.001 * wiggle)

    o, c = price(open_ms), price(open_ms + minutes * MINUTE_MS)
    h, lo = max(o, c) * 1.0004, min(o, c) * 0.9996
    volume = 1.0 + (open_ms // MINUTE_MS) % 17 / 4.0
    return (
        round(o, 2),
        round(h, 2),
        round(lo, 2),
        round(c, 2),
        volume,
        10 + (open_ms // MINUTE_MS) % 31,
    )


@dataclass(slots=True)
class RestVenueServer:
    """Serve the three venues' REST market data for candles in [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    delay_s: float = 0.0
    throttle_every: int = 0
    last_trade_id: int = 1_000_000  # Coinbase trades: ids 1..last_trade_id
    fixtures: Path = FIXTURES
    requests: list[str] = field(default_factory=list)
    candle_requests: int = 0
    throttled: int = 0
    url: str = ""
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (an ephemeral port by default) in a daemon thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, headers = server.answer(self.path)
                payload = json.dumps(body, separators=(",", ":")).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self.url

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _fixture(self, name: str) -> Any:
        return json.loads((self.fixtures / name).read_text())

    def answer(self, raw_path: str) -> tuple[int, Any, dict[str, str]]:
        """The status, JSON body and headers the venue would send for `raw_path`."""
        parts = urlsplit(raw_path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(raw_path)
        if self.delay_s:
            time.sleep(self.delay_s)
        if path == "/api/v3/exchangeInfo":
            return 200, self._fixture("binance_exchangeInfo.json"), {}
        if path == "/api/v3/klines":
            return self._throttle("binance") or self._binance_klines(query)
        if path == "/products":
            return 200, self._fixture("coinbase_products.json"), {}
        if path.startswith("/products/") and path.endswith("/trades"):
            return self._coinbase_trades(path.split("/")[2], query)
        if path.startswith("/products/") and path.endswith("/candles"):
            return self._throttle("coinbase") or self._coinbase_candles(path.split("/")[2], query)
        if path == "/0/public/AssetPairs":
            return 200, self._fixture("kraken_AssetPairs.json"), {}
        if path == "/0/public/OHLC":
            return self._throttle("kraken") or self._kraken_ohlc(query)
        return 404, {"message": "NotFound"}, {}

    def _throttle(self, venue: str) -> tuple[int, Any, dict[str, str]] | None:
        with self._lock:
            self.candle_requests += 1
            hit = self.throttle_every and self.candle_requests % self.throttle_every == 0
            if hit:
                self.throttled += 1
        if not hit:
            return None
        if venue == "binance":
            msg = "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute."
            return 429, {"code": -1003, "msg": msg}, {"Retry-After": "0"}
        if venue == "coinbase":
            return 429, {"message": "Public rate limit exceeded"}, {}
        return 200, {"error": ["EAPI:Rate limit exceeded"]}, {}

    def _opens(self, first_ms: int, last_ms: int, step_ms: int, limit: int) -> list[int]:
        first = max(self.start_ms, -(-first_ms // step_ms) * step_ms)
        last = min(last_ms, self.end_ms - step_ms)
        return list(range(first, last + 1, step_ms))[:limit]

    def _binance_klines(self, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        minutes = _BINANCE_INTERVALS.get(q.get("interval", ""), 0)
        if not minutes or "symbol" not in q:
            return 400, {"code": -1120, "msg": "Invalid interval."}, {}
        step = minutes * MINUTE_MS
        limit = min(int(q.get("limit", 500)), 1000)
        if "startTime" in q:
            opens = self._opens(
                int(q["startTime"]), int(q.get("endTime", self.end_ms)), step, limit
            )
        else:
            opens = self._opens(self.start_ms, int(q.get("endTime", self.end_ms)), step, 10**9)
            opens = opens[-limit:]
        rows = []
        for t in opens:
            o, h, lo, c, v, n = candle("binance", q["symbol"], t, minutes)
            rows.append(
                [
                    t,
                    f"{o:.8f}",
                    f"{h:.8f}",
                    f"{lo:.8f}",
                    f"{c:.8f}",
                    f"{v:.8f}",
                    t + step - 1,
                    f"{v * c:.8f}",
                    n,
                    f"{v / 2:.8f}",
                    f"{v * c / 2:.8f}",
                    "0",
                ]
            )
        return 200, rows, {"X-MBX-USED-WEIGHT-1M": str(2 * len(self.requests))}

    def _coinbase_candles(self, product: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        granularity = int(q.get("granularity", 60))
        step = granularity * 1000

        def ms(text: str) -> int:
            return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)

        end = ms(q["end"]) if "end" in q else self.end_ms
        start = ms(q["start"]) if "start" in q else end - 300 * step
        if (end - start) // step > 300:
            msg = (
                "granularity too small for the requested time range. "
                "Count of aggregations requested exceeds 300"
            )
            return 400, {"message": msg}, {}
        rows = []
        for t in reversed(self._opens(start, end, step, 300)):
            o, h, lo, c, v, _ = candle("coinbase", product, t, granularity // 60)
            rows.append([t // 1000, lo, h, o, c, v])
        return 200, rows, {}

    def _coinbase_trades(self, product: str, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        # Newest first, ids below `after` (the venue's pagination cursor), at most 1000.
        limit = min(int(q.get("limit", 100)), 1000)
        top = min(int(q.get("after", self.last_trade_id + 1)), self.last_trade_id + 1)
        rows = []
        for trade_id in range(top - 1, max(0, top - 1 - limit), -1):
            o, *_ = candle("coinbase", product, self.start_ms + trade_id * 100)
            when = datetime.fromtimestamp((self.start_ms + trade_id * 100) / 1000, UTC)
            rows.append({
                "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "trade_id": trade_id,
                "price": f"{o:.8f}", "size": f"{0.001 * (1 + trade_id % 7):.8f}",
                "side": "buy" if trade_id % 2 else "sell",
            })  # fmt: skip
        headers = {"CB-AFTER": str(rows[-1]["trade_id"])} if rows else {}
        return 200, rows, headers

    def _kraken_ohlc(self, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        pair = _KRAKEN_PAIRS.get(q.get("pair", "").upper())
        if pair is None:
            return 200, {"error": ["EQuery:Unknown asset pair"]}, {}
        minutes = int(q.get("interval", 1))
        step = minutes * MINUTE_MS
        newest = self._opens(self.start_ms, self.end_ms, step, 10**9)[-KRAKEN_MAX_CANDLES:]
        since_ms = int(q.get("since", 0)) * 1000
        rows = []
        for t in newest:
            if t <= since_ms:
                continue
            o, h, lo, c, v, n = candle("kraken", pair, t, minutes)
            vwap = (o + h + lo + c) / 4
            rows.append(
                [
                    t // 1000,
                    f"{o:.1f}",
                    f"{h:.1f}",
                    f"{lo:.1f}",
                    f"{c:.1f}",
                    f"{vwap:.1f}",
                    f"{v:.8f}",
                    n,
                ]
            )
        last = rows[-1][0] if rows else since_ms // 1000
        return 200, {"error": [], "result": {pair: rows, "last": last}}, {}


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted; print the URL first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", required=True, help="first candle, ISO 8601 UTC")
    parser.add_argument("--end", required=True, help="end of the data, ISO 8601 UTC")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-s", type=float, default=0.0)
    args = parser.parse_args(argv)

    def ms(text: str) -> int:
        return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)

    server = RestVenueServer(start_ms=ms(args.start), end_ms=ms(args.end), delay_s=args.delay_s)
    print(server.start(args.port), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
